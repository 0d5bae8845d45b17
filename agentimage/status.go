package agentimage

import "context"

// State is what an image is to this nanoclaw.
type State string

const (
	Current State = "is current"
	Missing State = "is missing"
	Stale   State = "is stale (built from another Dockerfile)"
	// OtherVariant is an image built from this Dockerfile, but to another
	// stage: a plain agent image under the browser image's name, or the
	// reverse.
	OtherVariant State = "is stale (built as another variant)"
)

// Labeler reads an image's labels; found is false when there is no such
// image. The sandbox's Runtime is one.
type Labeler interface {
	ImageLabels(ctx context.Context, ref string) (labels map[string]string, found bool, err error)
}

// Status tells whether ref is there and was built from this binary's
// Dockerfile to variant (TargetAgent or TargetBrowser). The labels are the
// cheap proof: one `image inspect`, nothing run. The base is not compared:
// an owner may build from any Debian bookworm.
func Status(ctx context.Context, rt Labeler, ref, variant string) (State, error) {
	labels, found, err := rt.ImageLabels(ctx, ref)
	if err != nil {
		return "", err
	}
	return state(labels, found, variant), nil
}

// state judges an image by its labels.
func state(labels map[string]string, found bool, variant string) State {
	switch {
	case !found:
		return Missing
	case labels[LabelDockerfile] != DockerfileDigest():
		return Stale
	case labels[LabelVariant] != variant:
		return OtherVariant
	}
	return Current
}
