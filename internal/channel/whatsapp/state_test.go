package whatsapp

import (
	"context"
	"path/filepath"
	"testing"
)

func TestPaired(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "db"), nil)
	if acc, ok, err := Paired(ctx, st.DB()); err != nil || ok {
		t.Fatalf("fresh store: %+v, %v, %v", acc, ok, err)
	}
	pairDevice(t, st)
	acc, ok, err := Paired(ctx, st.DB())
	if err != nil || !ok || acc.JID != ownPN.ToNonAD().String() || acc.PushName != "Me" {
		t.Fatalf("paired store: %+v, %v, %v", acc, ok, err)
	}
}
