package whatsapp

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"

	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore opens a NanoClaw store in a temporary directory, as the host does.
func openStore(t *testing.T, path string, key []byte) *store.Store {
	t.Helper()
	return testenv.OpenStore(t, path, store.Options{Key: key, Logger: quiet})
}

// pairDevice stores a paired device for ownPN/ownLID, as Pair would after a
// successful pairing (with dummy signatures of the right sizes).
func pairDevice(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	_, dev, err := openDevice(ctx, st.DB(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	jid := withDevice(ownPN, 17)
	dev.ID = &jid
	dev.LID = withDevice(ownLID, 17)
	dev.PushName = "Me"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignatureKey: make([]byte, 32),
		AccountSignature:    make([]byte, 64),
		DeviceSignature:     make([]byte, 64),
	}
	if err := dev.Save(ctx); err != nil {
		t.Fatalf("save device: %v", err)
	}
}

func tables(t *testing.T, st *store.Store) []string {
	t.Helper()
	rows, err := st.DB().Query(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// whatsmeow's tables live beside NanoClaw's in the same database, through the
// same ncruces driver, plain and encrypted; reopening keeps the session and
// upgrades nothing twice.
func TestSessionStoreSharesTheDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"plain", nil}, {"encrypted", make([]byte, store.KeySize)}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "nanoclaw.db")
			st := openStore(t, path, tc.key)
			_, dev, err := openDevice(ctx, st.DB(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			if dev.ID != nil {
				t.Fatalf("fresh database has a device %v", dev.ID)
			}
			pairDevice(t, st)

			names := tables(t, st)
			for _, want := range []string{"messages", "groups", "schema_migrations", "whatsmeow_device", "whatsmeow_sessions",
				"whatsmeow_lid_map", "whatsmeow_event_buffer", "whatsmeow_version"} {
				if !slices.Contains(names, want) {
					t.Errorf("table %s missing; have %v", want, names)
				}
			}
			var version int
			if err := st.DB().QueryRow(`SELECT version FROM whatsmeow_version`).Scan(&version); err != nil || version < 11 {
				t.Errorf("whatsmeow schema version %d, %v", version, err)
			}

			// The LID map's queries use $N placeholders, rewritten for SQLite.
			_, dev, err = openDevice(ctx, st.DB(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			if err := dev.LIDs.PutLIDMapping(ctx, bobLID, bobPN); err != nil {
				t.Fatalf("put LID mapping: %v", err)
			}
			st.Close()

			// Reopen: our migrations and whatsmeow's both find their schema current.
			st = openStore(t, path, tc.key)
			_, dev, err = openDevice(ctx, st.DB(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			if dev.ID == nil || dev.ID.User != ownPN.User || dev.GetLID().User != ownLID.User || dev.PushName != "Me" {
				t.Fatalf("reopened device: id %v lid %v name %q", dev.ID, dev.LID, dev.PushName)
			}
			pn, err := dev.LIDs.GetPNForLID(ctx, bobLID)
			if err != nil || pn != bobPN {
				t.Errorf("GetPNForLID = %v, %v; want %v", pn, err, bobPN)
			}
			if pn, _ := dev.LIDs.GetPNForLID(ctx, types.NewJID("1", types.HiddenUserServer)); !pn.IsEmpty() {
				t.Errorf("unknown LID mapped to %v", pn)
			}

			// whatsmeow's cascade deletes depend on foreign keys being on.
			if err := dev.Sessions.PutSession(ctx, "4242.0:1", []byte("signal session")); err != nil {
				t.Fatalf("put session: %v", err)
			}
			if err := dev.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			for _, table := range []string{"whatsmeow_device", "whatsmeow_sessions"} {
				var n int
				if err := st.DB().QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
					t.Errorf("%s rows after deleting the device: %d, %v", table, n, err)
				}
			}
		})
	}
}
