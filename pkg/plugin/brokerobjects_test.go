package plugin

import (
	"slices"
	"testing"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

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

func TestNodesWithoutMember(t *testing.T) {
	node := func(pod string) rabbitmq.Node {
		return rabbitmq.Node{Name: "rabbit@" + pod + ".rabbitmq-nodes.ns", Running: true}
	}
	nodes := []rabbitmq.Node{node("rabbitmq-0"), node("rabbitmq-1"), node("rabbitmq-2")}
	members := func(pods ...string) *rabbitmq.Members {
		m := &rabbitmq.Members{}
		for _, pod := range pods {
			m.Members = append(m.Members, node(pod).Name)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		members *rabbitmq.Members
		want    []string
	}{
		{"every node", members("rabbitmq-0", "rabbitmq-1", "rabbitmq-2"), nil},
		{"declared while two nodes were away", members("rabbitmq-0"), []string{"rabbitmq-1", "rabbitmq-2"}},
		{"a classic queue has no members", members(), nil},
		{"no management API", nil, nil},
	} {
		if got := nodesWithoutMember(nodes, tc.members); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
