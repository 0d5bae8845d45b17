package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// Without a runtime the browser image is checked only for the groups that
// need it.
func TestBrowserImageWithoutRuntime(t *testing.T) {
	cfg := &config.Config{BrowserImage: "localhost/nanoclaw-agent-browser:latest"}
	if c := BrowserImage(context.Background(), cfg, nil, nil); c != nil {
		t.Errorf("no group with a browser: %+v, want no line", c)
	}
	c := BrowserImage(context.Background(), cfg, nil, []string{"a", "b", "c", "d", "e", "f", "g"})
	if len(c) != 1 || c[0].OK || !strings.Contains(c[0].Detail, "a, b, c, d, e and 2 more") {
		t.Errorf("groups with a browser: %+v", c)
	}
}

// BrowserImage and agentimage.Status against images in podman, labelled as
// `nanoclaw image build` labels them.
func TestBrowserImageE2E(t *testing.T) {
	bin := testenv.Runtime(t, "podman")
	ctx := context.Background()
	rt, err := sandbox.Detect(ctx, sandbox.Podman)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dockerfile := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(dockerfile, []byte("FROM "+testenv.BaseImage+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := func(v string) string {
		return "localhost/nanoclaw-doctor-image-test:" + v + "-" + strconv.Itoa(os.Getpid())
	}
	for _, v := range []string{agentimage.TargetAgent, agentimage.TargetBrowser} {
		t.Cleanup(func() { exec.Command(bin, "rmi", "--force", tag(v)).Run() })
		err := rt.Build(ctx, sandbox.BuildOptions{ContextDir: dir, Dockerfile: dockerfile, Tag: tag(v),
			Labels: map[string]string{agentimage.LabelDockerfile: agentimage.DockerfileDigest(), agentimage.LabelVariant: v}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	if st, err := agentimage.Status(ctx, rt, tag(agentimage.TargetBrowser), agentimage.TargetBrowser); err != nil || st != agentimage.Current {
		t.Errorf("browser image as browser: %q, %v", st, err)
	}
	if st, err := agentimage.Status(ctx, rt, tag(agentimage.TargetBrowser), agentimage.TargetAgent); err != nil || st != agentimage.OtherVariant {
		t.Errorf("browser image as agent: %q, %v", st, err)
	}
	missing := "localhost/nanoclaw-doctor-image-test:none"
	for _, tc := range []struct {
		name   string
		image  string
		groups []string
		want   string // "" for no line
		fix    string
	}{
		{"current, unused", tag(agentimage.TargetBrowser), nil, "✓ " + tag("browser") + ", current; no group has browser=true", ""},
		{"current, used", tag(agentimage.TargetBrowser), []string{"web"}, "✓ " + tag("browser") + ", current; groups with browser=true: web", ""},
		{"missing, unused", missing, nil, "", ""},
		{"missing, used", missing, []string{"web"}, "✗ " + missing + " is missing; groups with browser=true: web", "nanoclaw image build --browser"},
		{"agent variant, unused", tag(agentimage.TargetAgent), nil, "✗ " + tag("agent") + " is stale (built as another variant); no group has browser=true",
			"nanoclaw image build --browser, or remove the image"},
		{"agent variant, used", tag(agentimage.TargetAgent), []string{"web"}, "✗ " + tag("agent") + " is stale (built as another variant); groups with browser=true: web",
			"nanoclaw image build --browser"},
	} {
		cfg := &config.Config{BrowserImage: tc.image}
		checks := BrowserImage(ctx, cfg, rt, tc.groups)
		var got, fix string
		if len(checks) == 1 {
			got = map[bool]string{true: "✓ ", false: "✗ "}[checks[0].OK] + checks[0].Detail
			fix = checks[0].Fix
		}
		if len(checks) > 1 || got != tc.want || fix != tc.fix || (len(checks) == 1 && checks[0].Name != "browser image") {
			t.Errorf("%s: %+v\nwant %q, fix %q", tc.name, checks, tc.want, tc.fix)
		}
	}
}
