// Package workqueue holds what the plugin's commands do with a work queue and its Job, as
// functions of plain inputs (a kubernetes.Interface, an AMQP connection, a job.Spec): launching
// the Job with the Secret its pods read BROKER_URL from, judging how a run went, describing a
// queue and its Job, and deleting them. It prints nothing: pkg/plugin parses flags, calls these
// and prints what they return.
package workqueue
