package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// wrappingImage builds, on r, an image FROM base whose ENTRYPOINT would
// wrap any command in a program of the image's (here: echo), and removes
// it when the test ends.
func wrappingImage(t *testing.T, r *Runtime, base, tag string) string {
	t.Helper()
	dir := t.TempDir()
	dockerfile := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(dockerfile, []byte("FROM "+base+"\nENTRYPOINT [\"/bin/echo\", \"wrapped\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.Build(ctx, BuildOptions{ContextDir: dir, Dockerfile: dockerfile, Tag: tag}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(r.Bin, "rmi", "--force", tag).Run() })
	return tag
}

// A kept container runs the Spec's command, not the image's ENTRYPOINT;
// it stays after it exits, and the runtime's record of it shows every
// hardening flag, the user, the command and the bind mounts; Stop removes
// it.
func TestKeptContainerInspected(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		image := wrappingImage(t, r, testenv.BaseImage, "localhost/nanoclaw-wrapped:sandboxtest")
		f := newHardenedFixture(t, uniqueFolder(t, "kept"), image)
		keep := *r
		keep.Keep = true
		rep := runProbe(t, &keep, f) // a report only if the probe itself ran
		assertHardened(t, f, rep)

		ctx := context.Background()
		if ok, err := exists(ctx, r, f.Spec.Name); err != nil || !ok {
			t.Fatalf("the kept container is gone after it exited: %v", err)
		}
		in, err := r.Inspect(ctx, f.Spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if in.NetworkMode != "none" || !in.AllCapsDropped || !in.ReadOnlyRoot || !in.NoNewPrivileges || in.User != f.Spec.User {
			t.Errorf("inspection %+v, want network none, no capabilities, a read-only root, no-new-privileges, user %s", in, f.Spec.User)
		}
		if !slices.Equal(in.Command, f.Spec.Cmd) {
			t.Errorf("the runtime runs %q, want %q", in.Command, f.Spec.Cmd)
		}
		if !sameMounts(in.Mounts, f.Spec.Mounts) {
			t.Errorf("bind mounts %+v, want %+v", in.Mounts, f.Spec.Mounts)
		}
		if err := r.Stop(ctx, f.Spec.Name, 0); err != nil {
			t.Fatal(err)
		}
		if ok, err := exists(ctx, r, f.Spec.Name); err != nil || ok {
			t.Errorf("after Stop the kept container is still there (%v)", err)
		}
	})
}

// A container started without nanoclaw's flags reads as such: Inspect
// reports what the runtime enforced, not what was hoped for.
func TestInspectSeesAnUnhardenedContainer(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		name, _ := ContainerName(uniqueFolder(t, "loose"), time.Now())
		if out, err := exec.Command(r.Bin, "run", "--name", name, "--network", "host", testenv.BaseImage, "true").CombinedOutput(); err != nil {
			t.Fatalf("run: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command(r.Bin, "rm", "--force", name).Run() })
		in, err := r.Inspect(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if in.NetworkMode != "host" || in.AllCapsDropped || in.ReadOnlyRoot || in.NoNewPrivileges || in.User != "" {
			t.Errorf("inspection %+v, want the host's network, capabilities, a writable root, privileges to gain and the image's user", in)
		}
		if _, err := r.Inspect(context.Background(), "nanoclaw-nosuchcontainer-1"); err == nil {
			t.Error("a missing container was inspected")
		}
	})
}

func sameMounts(a, b []Mount) bool {
	less := func(x, y Mount) int {
		if x.Target < y.Target {
			return -1
		}
		if x.Target > y.Target {
			return 1
		}
		return 0
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, less)
	slices.SortFunc(b, less)
	return slices.Equal(a, b)
}
