package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// recordConfirmTimeout bounds the wait for the broker's confirm of a record. A broker that
// blocks publishers (a memory or disk alarm) would otherwise hold the item forever; past it, the
// record counts as lost and the item is left to the broker to deliver again.
const recordConfirmTimeout = 30 * time.Second

// recorder publishes one result record and returns once the broker confirmed it: a
// *queue.Recorder in production, a fake in tests. Its errors are a *queue.NotStoredError when
// the broker, still connected, refused the record, and a *queue.NackedError when it nacked it.
type recorder interface {
	Publish(ctx context.Context, msg amqp.Publishing) error
	Close()
}

// brokerRecorder opens the production recorder on the connection of the production source.
func brokerRecorder(src source, name string) (recorder, error) {
	c, ok := src.(*queue.Consumer)
	if !ok {
		return nil, fmt.Errorf("cannot publish result records from a %T", src)
	}
	r, err := c.Recorder(name)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// recorderError turns a failure to open the recorder into a misconfiguration when retrying
// cannot fix it: the results queue is missing, or the user may not use it.
func (a *agent) recorderError(err error) error {
	if errors.Is(err, queue.ErrNoQueue) {
		return misconfigured("the results queue %q does not exist in vhost %q on the broker at %s: the agent publishes a result record there for every item it settles (--results); `kubectl workqueue run` declares it, or drop --results",
			a.cfg.Results, a.vhost, a.redact.URL())
	}
	if permanent := queue.Refusal(err, a.cfg.Results, a.vhost); permanent != nil {
		if refused := queue.AsRefusal(permanent); refused != nil {
			refused.Broker = a.redact.URL()
			return misconfigured("%w (the results queue, from --results)", refused)
		}
		return &misconfiguredError{err: permanent}
	}
	return err
}

// publishRecord publishes the record of an attempt that the command settles, and returns once
// the broker confirmed it; only then may the item be acked or given back, so that no acked item
// lacks its record. It does nothing when results are off.
func (a *agent) publishRecord(it item, run commandResult, result, failure string) error {
	if a.cfg.Results == "" {
		return nil
	}
	if a.sess == nil || a.sess.records == nil {
		return errors.New("the connection to the broker was lost")
	}
	body, err := json.Marshal(a.record(it, run, result, failure))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordConfirmTimeout)
	defer cancel()
	return a.sess.records.Publish(ctx, amqp.Publishing{
		ContentType: outcome.ContentTypeRecord,
		MessageId:   it.messageID,
		Timestamp:   time.Now(),
		Body:        body,
	})
}

// record says what happened to one attempt.
func (a *agent) record(it item, run commandResult, result, failure string) outcome.Record {
	r := outcome.Record{
		Queue:      a.cfg.Queue,
		MessageID:  it.messageID,
		Item:       it.preview,
		Attempt:    it.attempt,
		Result:     result,
		Error:      a.redact.Redact(failure),
		DurationMS: run.duration.Milliseconds(),
		Pod:        a.hostname,
		FinishedAt: time.Now().UTC(),
	}
	if run.started {
		code := run.exitCode
		r.ExitCode = &code
	}
	if run.outputFrom != "" {
		r.SetOutput(run.output, run.outputFrom, run.outputTruncated)
	}
	return r
}

// recordFailed handles a record that did not reach the results queue: the item is left
// unsettled and the session dropped, so the broker delivers the item again, as after a lost ack.
// A broker that is connected but does not take the record (the results queue was deleted) is a
// misconfiguration that every later item would meet too; a nack is not: RabbitMQ nacks while the
// queue is unavailable, as when its node shuts down.
func (a *agent) recordFailed(o outcome.Outcome, it item, subject, what string, err, stop error) (outcome.Outcome, error) {
	a.dropSession()
	o.Result = outcome.ResultError
	var notStored *queue.NotStoredError
	if errors.As(err, &notStored) {
		mis := misconfigured("%s: %s, but the results queue %q did not take its result record (%v), so the item was left to the broker to deliver again: the results queue must exist and take records; `kubectl workqueue run` declares it",
			subject, what, a.cfg.Results, err)
		o.Error = a.redact.Redact(mis.Error())
		return o, mis
	}
	a.logf("%s: %s, but its result record did not reach the broker (%v); not settled, the broker will deliver the item again", subject, what, err)
	lost := &ackLostError{messageID: it.messageID, err: err, record: true, brokerDropsIt: errors.Is(err, context.DeadlineExceeded)}
	o.Error = a.redact.Redact(lost.Error())
	if stop != nil {
		return o, stop
	}
	return o, lost
}
