package whatsapp

import (
	"context"
	"database/sql"
	"log/slog"
)

// Paired reports the account paired in db, without connecting: what
// doctor and status say of WhatsApp while the daemon is down. When
// WhatsApp logs the device out, the session is deleted, so a logged-out
// account reads as not paired.
func Paired(ctx context.Context, db *sql.DB) (Account, bool, error) {
	_, device, err := openDevice(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil || device.ID == nil {
		return Account{}, false, err
	}
	return accountOf(*device.ID, device.PushName), true, nil
}
