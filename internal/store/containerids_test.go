package store

import (
	"context"
	"testing"
)

// R2: each group gets its own id, skipping the host's; it is kept for good.
func TestContainerIDs(t *testing.T) {
	st, _ := openTest(t)
	ctx := context.Background()
	const lo, hi = 100000, 100005
	taken := func(id int) bool { return id == 100000 || id == 100002 }
	a, err := st.ContainerID(ctx, "alpha", lo, hi, taken)
	if err != nil || a != 100001 {
		t.Fatalf("alpha: %d, %v; want 100001 (100000 is the host's)", a, err)
	}
	b, _ := st.ContainerID(ctx, "beta", lo, hi, taken)
	if b != 100003 {
		t.Errorf("beta: %d, want 100003", b)
	}
	if again, _ := st.ContainerID(ctx, "alpha", lo, hi, func(int) bool { return false }); again != a {
		t.Errorf("alpha's id changed: %d then %d", a, again)
	}
	st.ContainerID(ctx, "gamma", lo, hi, taken)
	if _, err := st.ContainerID(ctx, "delta", lo, hi, taken); err == nil {
		t.Error("an id outside the range was handed out")
	}
	if _, err := st.ContainerID(ctx, "../x", lo, hi, taken); err == nil {
		t.Error("an invalid folder got an id")
	}
	wantRefused(t, st, `INSERT INTO container_ids (folder, uid) VALUES ('root', 0)`)
}
