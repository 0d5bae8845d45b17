package store

// usageCosts is schema step v8's part for budgets (issue 14): filled by
// the work on model usage and its cost.
const usageCosts = ""
