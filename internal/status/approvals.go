package status

import (
	"context"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Approval is one question to the owner under egress mode ask and its
// answer: who asked for what, and who decided, when.
type Approval struct {
	Code      string     `json:"code"`
	Folder    string     `json:"folder"`
	Target    string     `json:"target"` // host:port
	AskedAt   time.Time  `json:"asked_at"`
	Decision  string     `json:"decision"` // allow, always, deny, timeout; "" while waiting
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
}

// maxApprovals is how many of the newest questions a report carries.
const maxApprovals = 10

// approvals returns the newest questions, of every group or of folder's.
func approvals(ctx context.Context, st *store.Store, folder string) ([]Approval, error) {
	limit := maxApprovals
	if folder != "" {
		limit = 50 * maxApprovals // the group's few among everyone's newest
	}
	list, err := st.RecentApprovals(ctx, limit)
	out := []Approval{}
	for _, a := range list {
		if folder != "" && a.Folder != folder || len(out) == maxApprovals {
			continue
		}
		out = append(out, Approval{Code: a.Code, Folder: a.Folder, Target: a.Target(), AskedAt: a.AskedAt,
			Decision: string(a.Decision), DecidedAt: a.DecidedAt, DecidedBy: a.DecidedBy})
	}
	return out, err
}
