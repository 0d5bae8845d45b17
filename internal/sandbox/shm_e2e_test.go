package sandbox

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// Spec.ShmMB sizes the container's /dev/shm on both runtimes; 0 leaves the
// runtime's default, 64 MB (podman: 64000 KiB; docker: 64 MiB).
func TestShmSize(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		def := 64 << 10
		if r.Kind == Podman {
			def = 64000
		}
		for _, tc := range []struct{ shmMB, wantKB int }{{0, def}, {128, 128 << 10}} {
			f := newHardenedFixture(t, uniqueFolder(t, "shm"), testenv.BaseImage, "df", "-k", "--output=size", "/dev/shm")
			f.Spec.ShmMB = tc.shmMB
			cmd, err := r.Command(context.Background(), f.Spec)
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			lines := strings.Fields(string(out))
			if err != nil || len(lines) != 2 || lines[1] != strconv.Itoa(tc.wantKB) {
				t.Errorf("ShmMB %d: df says %q (%v), want %d KiB", tc.shmMB, out, err, tc.wantKB)
			}
		}
	})
}
