package sandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// ImageExists reports whether the image is present locally. Nothing is
// pulled: a missing image is (false, nil); an error means the CLI failed.
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	if err := ValidateImage(ref); err != nil {
		return false, err
	}
	verb := "inspect"
	if r.Kind == Podman {
		verb = "exists"
	}
	_, err := r.run(ctx, "image", verb, ref)
	if err == nil || r.imageMissing(err) {
		return err == nil, nil
	}
	return false, fmt.Errorf("check image %s: %w", ref, err)
}

// imageMissing reports whether a failed image lookup means that the image
// is not there, rather than that the CLI could not say.
func (r *Runtime) imageMissing(err error) bool {
	var ce *cliError
	if !errors.As(err, &ce) {
		return false
	}
	if r.Kind == Podman {
		// podman: a silent exit 1 is "no such image"; errors say why.
		var ee *exec.ExitError
		return errors.As(ce.Err, &ee) && ee.ExitCode() == 1 && ce.Stderr == ""
	}
	// docker: "No such image"; Apple's CLI: "notFound: …" / "… not found".
	s := strings.ToLower(ce.Stderr)
	return slices.ContainsFunc([]string{"no such", "not found", "notfound", "not known", "does not exist"},
		func(m string) bool { return strings.Contains(s, m) })
}

// BuildOptions is one image build.
type BuildOptions struct {
	ContextDir string            // absolute path of the build context
	Dockerfile string            // absolute path of the Dockerfile
	Tag        string            // the image reference to build
	Target     string            // the Dockerfile stage to build (--target); "" builds the last
	BuildArgs  map[string]string // --build-arg KEY=VALUE
	Labels     map[string]string // --label KEY=VALUE
}

var (
	labelKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)
	// stageName is a Dockerfile stage name as docker accepts one (lower case),
	// bounded, never starting with '-'.
	stageName = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)
)

func (o *BuildOptions) validate() error {
	// errors.Join drops the nil ones.
	errs := []error{checkArgPath("build context", o.ContextDir), checkArgPath("Dockerfile", o.Dockerfile), ValidateImage(o.Tag)}
	if o.Target != "" && !stageName.MatchString(o.Target) {
		errs = append(errs, fmt.Errorf("build target %q is not a stage name (lower-case letters, digits, '.', '_', '-')", o.Target))
	}
	for _, kv := range []struct {
		what string
		key  *regexp.Regexp
		m    map[string]string
	}{{"build argument", envKey, o.BuildArgs}, {"label", labelKey, o.Labels}} {
		for k, v := range kv.m {
			if !kv.key.MatchString(k) {
				errs = append(errs, fmt.Errorf("%s name %q is invalid", kv.what, k))
			}
			if strings.ContainsAny(v, "\x00\n\r") {
				errs = append(errs, fmt.Errorf("%s %s contains a NUL or line break", kv.what, k))
			}
		}
	}
	return errors.Join(errs...)
}

// checkArgPath validates a path that is a whole argument of its own:
// absolute (so never read as a flag), clean, without control characters.
func checkArgPath(what, p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%s %q is not an absolute path", what, p)
	}
	for i, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q has a control character at byte %d", what, p, i)
		}
	}
	return nil
}

// BuildArgs returns the arguments (after the program name) that build the
// image. It has no side effects; hostNetwork adds docker's --network host.
func (r *Runtime) BuildArgs(o BuildOptions, hostNetwork bool) ([]string, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("build %s: %w", o.Tag, err)
	}
	a := []string{"build"}
	switch r.Kind {
	case Docker:
		if hostNetwork {
			a = append(a, "--network", "host")
		}
	case Apple:
		a = append(a, "--progress", "plain") // readable in a log, not a terminal UI
	}
	a = append(a, "--file", o.Dockerfile, "--tag", o.Tag)
	if o.Target != "" {
		// The same flag in docker, podman (buildah) and Apple's CLI.
		a = append(a, "--target", o.Target)
	}
	for _, k := range slices.Sorted(maps.Keys(o.BuildArgs)) {
		a = append(a, "--build-arg", k+"="+o.BuildArgs[k])
	}
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		a = append(a, "--label", k+"="+o.Labels[k])
	}
	return append(a, o.ContextDir), nil
}

// Build builds an image, streaming the CLI's output to progress (which may
// be nil).
func (r *Runtime) Build(ctx context.Context, o BuildOptions, progress io.Writer) error {
	hostNetwork := false
	if r.Kind == Docker {
		// A daemon without a default bridge (dockerd --bridge=none) gives RUN
		// steps no network at all; the host's network is then the only one.
		_, err := r.run(ctx, "network", "inspect", "bridge")
		hostNetwork = err != nil
	}
	args, err := r.BuildArgs(o, hostNetwork)
	if err != nil {
		return err
	}
	progress = cmp.Or(progress, io.Writer(io.Discard))
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	cmd.Env = cliEnv(os.Getenv, true)
	cmd.Stdout, cmd.Stderr = progress, progress
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s build of %s failed: %w", r.Kind, o.Tag, err)
	}
	return nil
}
