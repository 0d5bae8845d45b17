package agentimage

import "testing"

// An image is current only when both its Dockerfile digest and its variant
// are this binary's: a plain agent image under the browser image's name (or
// the reverse) is stale, as is one without the variant label.
func TestState(t *testing.T) {
	digest := DockerfileDigest()
	for _, tc := range []struct {
		labels  map[string]string
		found   bool
		variant string
		want    State
	}{
		{nil, false, TargetAgent, Missing},
		{map[string]string{LabelDockerfile: digest, LabelVariant: "agent"}, true, TargetAgent, Current},
		{map[string]string{LabelDockerfile: digest, LabelVariant: "browser"}, true, TargetBrowser, Current},
		{map[string]string{LabelDockerfile: digest, LabelVariant: "agent"}, true, TargetBrowser, OtherVariant},
		{map[string]string{LabelDockerfile: digest, LabelVariant: "browser"}, true, TargetAgent, OtherVariant},
		{map[string]string{LabelDockerfile: digest}, true, TargetAgent, OtherVariant},
		{map[string]string{LabelDockerfile: "0123", LabelVariant: "agent"}, true, TargetAgent, Stale},
		{nil, true, TargetAgent, Stale},
	} {
		if got := state(tc.labels, tc.found, tc.variant); got != tc.want {
			t.Errorf("labels %v (found %v) as %s: %q, want %q", tc.labels, tc.found, tc.variant, got, tc.want)
		}
	}
}
