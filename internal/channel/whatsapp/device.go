package whatsapp

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"

	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
)

// openDevice opens whatsmeow's session store inside NanoClaw's own database
// and returns the one device it keeps (a new, unpaired one when there is
// none).
//
// whatsmeow keeps its tables there under a whatsmeow_ prefix, with its own
// schema version in whatsmeow_version; Upgrade creates or upgrades them in
// transactions and never touches NanoClaw's tables (whose version is in
// schema_migrations). It requires foreign keys, which store.Open turns on
// for every pooled connection, as it sets the busy timeout and WAL mode.
// With an encrypted database, the session keys are encrypted at rest with
// everything else (finding 11).
func openDevice(ctx context.Context, db *sql.DB, log *slog.Logger) (*sqlstore.Container, *store.Device, error) {
	container := sqlstore.NewWithDB(db, "sqlite3", waLogger{log, "whatsmeow/store"})
	if err := container.Upgrade(ctx); err != nil {
		return nil, nil, fmt.Errorf("open WhatsApp session store: upgrade its tables: %w", err)
	}
	device, err := container.GetFirstDevice(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("open WhatsApp session store: load device: %w", err)
	}
	return container, device, nil
}

// setDeviceProps names this client in the phone's "Linked devices" list. The
// properties are sent when pairing; whatsmeow keeps them in package globals.
var setDeviceProps = sync.OnceFunc(func() {
	store.SetOSInfo("NanoClaw", [3]uint32{1, 0, 0})
	store.DeviceProps.PlatformType = waCompanionReg.DeviceProps_DESKTOP.Enum()
	// NanoClaw reads new messages only: ask for as little history as the
	// phone allows.
	store.DeviceProps.RequireFullSync = proto.Bool(false)
})

// waLogger sends whatsmeow's log lines to slog. whatsmeow's "info" lines are
// routine protocol chatter, so they go to debug; the channel logs what a user
// needs (connected, logged out…) itself.
type waLogger struct {
	log    *slog.Logger
	module string
}

func (l waLogger) logf(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, args...), "module", l.module)
}

func (l waLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }
func (l waLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args) }
func (l waLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args) }
func (l waLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug-4, format, args) }

// Sub returns a logger for a part of whatsmeow.
func (l waLogger) Sub(module string) waLog.Logger {
	return waLogger{log: l.log, module: l.module + "/" + module}
}
