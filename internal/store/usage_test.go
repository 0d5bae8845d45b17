package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	for _, u := range []struct {
		folder, day string
		in, out     int64
	}{
		{"family", "2025-07-01", 100, 10},
		{"family", "2025-07-01", 50, 5},
		{"family", "2025-07-02", 1, 2},
		{"work", "2025-07-01", 1000, 0},
		{"work", "2025-06-30", 7, 7},
		{"family", "2025-07-03", 0, 0},
	} {
		if err := s.AddUsage(ctx, u.folder, u.day, u.in, u.out); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		folder, from, to string
		want             []UsageDay
	}{
		{"family", "2025-07-01", "2025-07-02", []UsageDay{
			{"family", "2025-07-01", 2, 150, 15, 0, 0, 0},
			{"family", "2025-07-02", 1, 1, 2, 0, 0, 0},
		}},
		{"", "2025-07-01", "2025-07-01", []UsageDay{
			{"family", "2025-07-01", 2, 150, 15, 0, 0, 0},
			{"work", "2025-07-01", 1, 1000, 0, 0, 0, 0},
		}},
		{"work", "2025-01-01", "2025-12-31", []UsageDay{
			{"work", "2025-06-30", 1, 7, 7, 0, 0, 0},
			{"work", "2025-07-01", 1, 1000, 0, 0, 0, 0},
		}},
		{"family", "2025-07-04", "2025-07-09", nil},
	} {
		got, err := s.Usage(ctx, tc.folder, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Usage(%q, %s, %s) = %+v\nwant %+v", tc.folder, tc.from, tc.to, got, tc.want)
		}
	}

	for _, bad := range []struct {
		folder, day string
		in, out     int64
		wantErr     string
	}{
		{"family", "2025-7-1", 1, 1, "not a date"},
		{"family", "2025-02-30", 1, 1, "not a date"},
		{"family", "yesterday", 1, 1, "not a date"},
		{"family", "", 1, 1, "not a date"},
		{"../x", "2025-07-01", 1, 1, "invalid group folder"},
		{"family", "2025-07-01", -1, 1, "negative"},
		{"family", "2025-07-01", 1, -1, "negative"},
	} {
		if err := s.AddUsage(ctx, bad.folder, bad.day, bad.in, bad.out); err == nil || !strings.Contains(err.Error(), bad.wantErr) {
			t.Errorf("AddUsage(%q, %q, %d, %d) = %v, want %q", bad.folder, bad.day, bad.in, bad.out, err, bad.wantErr)
		}
	}
	if _, err := s.Usage(ctx, "family", "July", "2025-07-01"); err == nil {
		t.Error("Usage accepted a bad day")
	}

	// The database refuses a negative count; planted past its CHECKs, it is
	// skipped, as is a day the database takes but the calendar does not have.
	negative := `INSERT INTO usage (folder, day, requests, input_tokens, output_tokens) VALUES ('family', '2025-07-05', 1, -100, 0)`
	wantRefused(t, s, negative)
	rawExec(t, s, []string{"ignore_check_constraints=ON"}, negative)
	rawExec(t, s, nil, `INSERT INTO usage (folder, day, requests, input_tokens, output_tokens) VALUES ('family', '2025-07-32', 1, 100, 0)`)
	got, err := s.Usage(ctx, "family", "2025-07-05", "2025-08-01")
	if err != nil || len(got) != 0 {
		t.Fatalf("Usage with bad rows = %+v, %v", got, err)
	}
	wantSkipLogged(t, logs, "usage", "family/2025-07-05")
	wantSkipLogged(t, logs, "usage", "family/2025-07-32")
}
