package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/portforward"
)

// ManagementPort is where RabbitMQ's management plugin serves its HTTP API; broker install
// enables the plugin. AMQP tells only a queue's ready messages: the items a consumer holds
// unacknowledged, in flight, are counted by the management API alone.
const ManagementPort = 15672

// ErrNoManagement is returned (wrapped) when the broker's management API cannot be reached:
// the plugin is off, as in Kubernetes' example.
var ErrNoManagement = errors.New("the broker's management API is not reachable")

// QueueInfo is what the management API says of a queue. Its counts lag by up to RabbitMQ's
// statistics interval, 5 seconds by default.
type QueueInfo struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	Ready     int            `json:"messages_ready"`
	InFlight  int            `json:"messages_unacknowledged"`
	Consumers int            `json:"consumers"`
	Arguments map[string]any `json:"arguments"`
}

// Queues lists the queues of the broker's vhost through its management API: on the broker's
// pod through a port-forward, or on the host of the broker's URL.
func (b *Broker) Queues(ctx context.Context, client kubernetes.Interface, config *rest.Config) ([]QueueInfo, error) {
	var queues []QueueInfo
	err := b.getJSON(ctx, client, config, func(vhost string) string {
		return "/api/queues/" + url.PathEscape(vhost) + "?columns=name,type,messages_ready,messages_unacknowledged,consumers,arguments"
	}, &queues)
	return queues, err
}

// management finds where the management API is and how to log in to it.
func (b *Broker) management(ctx context.Context, client kubernetes.Interface, config *rest.Config) (base, username, password, vhost string, closeForward func(), err error) {
	closeForward = func() {}
	vhost = "/"
	if b.url != "" {
		u, err := url.Parse(b.url)
		if err != nil {
			return "", "", "", "", closeForward, err
		}
		password, _ := u.User.Password()
		if v := u.Path; len(v) > 1 {
			vhost, _ = url.PathUnescape(v[1:])
		}
		return "http://" + net.JoinHostPort(u.Hostname(), fmt.Sprint(ManagementPort)), u.User.Username(), password, vhost, closeForward, nil
	}
	target := b.pod
	target.Port = ManagementPort
	session, err := portforward.Forward(ctx, config, client, target)
	if err != nil {
		return "", "", "", "", closeForward, fmt.Errorf("%w: %v", ErrNoManagement, err)
	}
	return "http://" + session.Addr(), b.username, b.password, vhost, session.Close, nil
}

// scrubURL keeps an HTTP client error from quoting the URL, which holds no password here but
// does hold the local port, of no use to anyone.
func scrubURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}
