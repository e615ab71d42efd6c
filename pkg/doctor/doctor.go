// Package doctor checks, one link at a time, what Kubernetes' work-queue example tests by hand
// from a temporary pod: the broker's Service and its ready pod, a port-forward to it, a login
// with the credentials, a pod of the cluster resolving and reaching the broker, and the RBAC
// permissions the plugin needs. Every failed check names its fix.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/portforward"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
)

// Check is one link and how it stands.
type Check struct {
	Name    string
	OK      bool
	Skipped bool   // not tried, because a link it needs is broken
	Detail  string // what was found
	Fix     string // what to do, when not OK
	// Broker tells a link to the broker from a permission of the caller's.
	Broker bool
}

// Request says what to check.
type Request struct {
	Namespace string
	Service   string
	Port      string
	URL       string // an external broker: no Service, no port-forward
	// AgentImage runs the in-cluster probe; empty skips it.
	AgentImage      string
	ImagePullPolicy string
	// ProbeTimeout bounds the in-cluster probe, image pull included; 90 s when 0.
	ProbeTimeout time.Duration
}

// Run checks every link and returns them all, in order.
func Run(ctx context.Context, client kubernetes.Interface, config *rest.Config, req Request) []Check {
	var checks []Check
	clusterAddress := ""
	if req.URL != "" {
		checks = append(checks, login(req.URL, "the broker URL"))
		if u, err := url.Parse(req.URL); err == nil {
			clusterAddress = u.Host
			if u.Port() == "" {
				clusterAddress = net.JoinHostPort(u.Hostname(), "5672")
			}
		}
	} else {
		service, target := serviceCheck(ctx, client, req)
		checks = append(checks, service)
		forward, login := forwardAndLogin(ctx, client, config, req, target, service.OK)
		checks = append(checks, forward, login)
		if address, err := portforward.ClusterAddress(ctx, client, req.Namespace, req.Service, req.Port); err == nil {
			clusterAddress = address
		}
	}
	checks = append(checks, inCluster(ctx, client, req, clusterAddress))
	return append(checks, permissions(ctx, client, req.Namespace))
}

func serviceCheck(ctx context.Context, client kubernetes.Interface, req Request) (Check, portforward.Target) {
	check := Check{Name: "service", Broker: true}
	target, err := portforward.ResolveService(ctx, client, req.Namespace, req.Service, req.Port)
	if err != nil {
		check.Detail = err.Error()
		check.Fix = "deploy the broker with `kubectl workqueue broker install`, or name its Service with --service"
		if errors.Is(err, portforward.ErrNoReadyPod) {
			check.Fix = "wait for the broker pod, or see why it is not ready: kubectl describe pod -l <the Service's selector>"
		}
		return check, target
	}
	check.OK = true
	check.Detail = fmt.Sprintf("service %s selects ready pod %s (container port %d)", req.Service, target.Pod, target.Port)
	return check, target
}

func forwardAndLogin(ctx context.Context, client kubernetes.Interface, config *rest.Config, req Request, target portforward.Target, serviceOK bool) (Check, Check) {
	forward := Check{Name: "port-forward", Broker: true}
	loginCheck := Check{Name: "login", Broker: true}
	if !serviceOK {
		forward.Skipped, loginCheck.Skipped = true, true
		return forward, loginCheck
	}
	session, err := portforward.Forward(ctx, config, client, target)
	if err != nil {
		forward.Detail = err.Error()
		forward.Fix = "kubectl port-forward must work for you in this namespace (RBAC create pods/portforward; an API server that allows it)"
		loginCheck.Skipped = true
		return forward, loginCheck
	}
	defer session.Close()
	forward.OK = true
	forward.Detail = fmt.Sprintf("port-forward to %s works", target)
	username, password, err := rabbitmq.Credentials(ctx, client, req.Namespace)
	if err != nil {
		loginCheck.Detail = err.Error()
		loginCheck.Fix = fmt.Sprintf("let the user read Secret %s, or fix its keys username and password", rabbitmq.CredentialsSecret)
		return forward, loginCheck
	}
	loginCheck = login(queue.BuildURL(username, password, session.Addr()), fmt.Sprintf("the credentials of Secret %s (guest:guest without it)", rabbitmq.CredentialsSecret))
	return forward, loginCheck
}

func login(rawURL, source string) Check {
	check := Check{Name: "login", Broker: true}
	conn, err := queue.Dial(rawURL)
	if err != nil {
		check.Detail = err.Error()
		check.Fix = "check " + source
		return check
	}
	defer conn.Close()
	version, _ := conn.Properties["version"].(string)
	check.OK = true
	check.Detail = fmt.Sprintf("RabbitMQ %s accepted %s", version, source)
	return check
}
