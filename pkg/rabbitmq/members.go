package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// applyCluster applies the cluster's objects, refusing names another owner holds. On a fresh
// install a failure removes what it made.
func applyCluster(ctx context.Context, client kubernetes.Interface, objects Objects, options metav1.ApplyOptions, fresh bool) error {
	services, configMaps := client.CoreV1().Services(*objects.NodesService.Namespace), client.CoreV1().ConfigMaps(*objects.ClusterConfig.Namespace)
	budgets := client.PolicyV1().PodDisruptionBudgets(*objects.Budget.Namespace)
	if existing, err := services.Get(ctx, *objects.NodesService.Name, metav1.GetOptions{}); err == nil && !ours(existing) {
		return &NotOursError{Kind: "Service", Name: existing.Name}
	}
	if existing, err := configMaps.Get(ctx, *objects.ClusterConfig.Name, metav1.GetOptions{}); err == nil && !ours(existing) {
		return &NotOursError{Kind: "ConfigMap", Name: existing.Name}
	}
	if existing, err := budgets.Get(ctx, *objects.Budget.Name, metav1.GetOptions{}); err == nil && !ours(existing) {
		return &NotOursError{Kind: "PodDisruptionBudget", Name: existing.Name}
	}
	undo := func() {
		if fresh {
			background := context.WithoutCancel(ctx)
			services.Delete(background, *objects.NodesService.Name, metav1.DeleteOptions{})
			configMaps.Delete(background, *objects.ClusterConfig.Name, metav1.DeleteOptions{})
			budgets.Delete(background, *objects.Budget.Name, metav1.DeleteOptions{})
		}
	}
	if _, err := services.Apply(ctx, objects.NodesService, options); err != nil {
		undo()
		return fmt.Errorf("create Service %s: %w", *objects.NodesService.Name, err)
	}
	if _, err := configMaps.Apply(ctx, objects.ClusterConfig, options); err != nil {
		undo()
		return fmt.Errorf("create ConfigMap %s: %w", *objects.ClusterConfig.Name, err)
	}
	if _, err := budgets.Apply(ctx, objects.Budget, options); err != nil {
		undo()
		return fmt.Errorf("create PodDisruptionBudget %s: %w", *objects.Budget.Name, err)
	}
	return nil
}

// ensureCookie adds an Erlang cookie to a Secret of an earlier install that has none; a Secret
// the plugin did not make is the user's to change.
func ensureCookie(ctx context.Context, client kubernetes.Interface, s Spec, existing *corev1.Secret) error {
	if len(existing.Data[CookieKey]) > 0 {
		return nil
	}
	if !ours(existing) {
		if s.Replicas == 1 {
			return nil // a single node makes its own cookie
		}
		return fmt.Errorf("Secret %s lacks the key %s, the Erlang cookie the broker's nodes share: add one (any 20 or more letters), or delete the Secret to have one generated", s.Secret, CookieKey)
	}
	cookie, err := generatePassword()
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"data": map[string][]byte{CookieKey: []byte(cookie)}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Secrets(s.Namespace).Patch(ctx, s.Secret, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: s.FieldManager}); err != nil {
		return fmt.Errorf("add an Erlang cookie to Secret %s: %w", s.Secret, err)
	}
	return nil
}

// Node is one RabbitMQ node of the broker, as its cluster sees it.
type Node struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
}

// Nodes lists the members of the cluster that the broker's Service leads to, through the
// management API.
func (b *Broker) Nodes(ctx context.Context, client kubernetes.Interface, config *rest.Config) ([]Node, error) {
	var nodes []Node
	if err := b.getJSON(ctx, client, config, func(string) string { return "/api/nodes?columns=name,running" }, &nodes); err != nil {
		return nil, err
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, nil
}

// Members says which nodes hold a quorum queue and which of them leads it.
type Members struct {
	Leader  string   `json:"leader"`
	Members []string `json:"members"`
	Online  []string `json:"online"`
}

// QueueMembers reads a queue's members through the management API; a classic queue has none.
func (b *Broker) QueueMembers(ctx context.Context, client kubernetes.Interface, config *rest.Config, queue string) (Members, error) {
	var m Members
	err := b.getJSON(ctx, client, config, func(vhost string) string {
		return "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue) + "?columns=leader,members,online"
	}, &m)
	slices.Sort(m.Members)
	slices.Sort(m.Online)
	return m, err
}

// ErrNotFound is returned (wrapped) for a queue the management API does not know, or an API
// this RabbitMQ does not have.
var ErrNotFound = errors.New("not found")

// GrowQueues adds a member on node to every quorum queue of the broker's vhost that lacks one,
// as `rabbitmq-queues grow NODE all` does: RabbitMQ does not grow a queue declared before the
// node joined. RabbitMQ before 3.13 has no such API: the error then wraps ErrNotFound.
func (b *Broker) GrowQueues(ctx context.Context, client kubernetes.Interface, config *rest.Config, node string) error {
	return b.call(ctx, client, config, http.MethodPost, func(string) string {
		return "/api/queues/quorum/replicas/on/" + url.PathEscape(node) + "/grow"
	}, func(vhost string) any {
		return map[string]string{"vhost_pattern": "^" + regexp.QuoteMeta(vhost) + "$", "queue_pattern": ".*", "strategy": "all"}
	}, nil)
}

// getJSON reads one document of the management API, at the path that pathIn gives for the
// broker's vhost.
func (b *Broker) getJSON(ctx context.Context, client kubernetes.Interface, config *rest.Config, pathIn func(vhost string) string, into any) error {
	return b.call(ctx, client, config, http.MethodGet, pathIn, nil, into)
}

// call makes one request of the management API: body, when not nil, gives what to send as JSON
// for the broker's vhost, and into, when not nil, what to decode the answer into.
func (b *Broker) call(ctx context.Context, client kubernetes.Interface, config *rest.Config, method string, pathIn func(vhost string) string, body func(vhost string) any, into any) error {
	base, username, password, vhost, closeForward, err := b.management(ctx, client, config)
	if err != nil {
		return err
	}
	path := pathIn(vhost)
	defer closeForward()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body(vhost))
		if err != nil {
			return err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, payload)
	if err != nil {
		return err
	}
	req.SetBasicAuth(username, password)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoManagement, scrubURL(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent, http.StatusCreated:
	case http.StatusUnauthorized:
		return fmt.Errorf("the management API refused user %s: it needs the management tag (rabbitmqctl set_user_tags %s management)", username, username)
	case http.StatusNotFound, http.StatusMethodNotAllowed: // 405: an older RabbitMQ routes the path elsewhere
		return fmt.Errorf("the management API has no %s: %w", strings.SplitN(path, "?", 2)[0], ErrNotFound)
	default:
		return fmt.Errorf("the management API answered %s", resp.Status)
	}
	if into == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("the management API's answer to %s: %w", strings.SplitN(path, "?", 2)[0], err)
	}
	return nil
}

// WaitForCluster waits until the cluster that the broker's Service leads to has every node of s
// as a running member: a quorum queue declared before then would get no replica on the missing
// nodes. A node that gave up waiting for the first one runs a cluster of its own; the error then
// names the members seen.
func (b *Broker) WaitForCluster(ctx context.Context, client kubernetes.Interface, config *rest.Config, s Spec) ([]Node, error) {
	want := make([]string, s.Replicas)
	for i := range want {
		want[i] = NodeName(s, i)
	}
	var seen []Node
	var lastErr error
	for {
		nodes, err := b.Nodes(ctx, client, config)
		if err == nil {
			seen, lastErr = nodes, nil
			if missing := missingNodes(nodes, want); len(missing) == 0 {
				return nodes, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("cannot read the broker's cluster members: %w", lastErr)
			}
			return nil, fmt.Errorf("the broker's nodes did not form one cluster in time: waiting for %s; the cluster has %s (kubectl logs %s-N names the cause)",
				strings.Join(missingNodes(seen, want), ", "), describeNodes(seen), s.Name)
		case <-time.After(statusInterval):
		}
	}
}

// missingNodes lists the wanted nodes that are not running members.
func missingNodes(nodes []Node, want []string) []string {
	var missing []string
	for _, name := range want {
		if !slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == name && n.Running }) {
			missing = append(missing, name)
		}
	}
	return missing
}

// describeNodes reads "rabbit@a (running), rabbit@b (stopped)".
func describeNodes(nodes []Node) string {
	if len(nodes) == 0 {
		return "no members"
	}
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = n.Name + map[bool]string{true: " (running)", false: " (stopped)"}[n.Running]
	}
	return strings.Join(parts, ", ")
}
