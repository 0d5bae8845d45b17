package store

// egressApprovals is schema step v8's part for the owner's egress
// approvals (issue 14): filled by the work on egress mode ask.
const egressApprovals = ""
