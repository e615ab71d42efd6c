package plugin

import "testing"

func TestShortNodeNameIsThePodsName(t *testing.T) {
	for node, want := range map[string]string{
		"rabbit@rabbitmq-1.rabbitmq-nodes.batch": "rabbitmq-1",
		"rabbit@localhost":                       "localhost",
		"no-at-sign":                             "no-at-sign",
	} {
		if got := shortNodeName(node); got != want {
			t.Errorf("shortNodeName(%q) = %q, want %q", node, got, want)
		}
	}
}
