package channel

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// R9: a chat gets its burst at once, then one message every three seconds
// (20 a minute); other chats are not slowed; an idle chat's budget refills.
func TestSendLimitPacesEachChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewSendLimit(20, 5)
		start := time.Now()
		for i := range 5 {
			if err := l.Check("a"); err != nil {
				t.Fatalf("message %d of the burst: Check = %v", i+1, err)
			}
			if err := l.Wait(ctx, "a"); err != nil || time.Since(start) != 0 {
				t.Fatalf("message %d of the burst waited %s (%v)", i+1, time.Since(start), err)
			}
		}
		var rl *RateLimitError
		if err := l.Check("a"); !errors.As(err, &rl) || rl.Wait != 3*time.Second ||
			err.Error() != "the send limit of chat a (20 messages a minute, 5 at once) is reached: wait 3s before sending again" {
			t.Fatalf("Check after the burst = %v", err)
		}
		if err := l.Check("b"); err != nil {
			t.Errorf("another chat is limited too: %v", err)
		}
		for i := range 3 { // the next ones go one every 3 s
			if err := l.Wait(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if got, want := time.Since(start), time.Duration(i+1)*3*time.Second; got != want {
				t.Errorf("message %d went after %s, want %s", 6+i, got, want)
			}
		}
		// A cancelled wait ends at once with the context's error.
		cctx, cancel := context.WithCancel(ctx)
		go func() { time.Sleep(time.Second); cancel() }()
		before := time.Now()
		if err := l.Wait(cctx, "a"); !errors.Is(err, context.Canceled) || time.Since(before) != time.Second {
			t.Errorf("a cancelled wait: %v after %s", err, time.Since(before))
		}
		// Quiet for a while: the whole burst is there again.
		time.Sleep(time.Minute)
		start = time.Now()
		for range 5 {
			l.Wait(ctx, "a")
		}
		if time.Since(start) != 0 {
			t.Errorf("after a quiet minute the burst waited %s", time.Since(start))
		}
	})
}

func TestSendLimitDefaults(t *testing.T) {
	if got := NewSendLimit(0, -1).String(); got != "20 messages a minute, 5 at once" {
		t.Errorf("defaults: %s", got)
	}
}
