package queue

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// ResultsName is the queue that receives the result records of name's items.
func ResultsName(name string) string { return name + constants.ResultsSuffix }

// DeclareResults makes sure the results queue of name exists: a quorum queue without a delivery
// limit, like QUEUE.failed, so that it stays available while one node of a cluster is down and
// its records can be read and given back any number of times. An existing one is used as it is.
func DeclareResults(conn *amqp.Connection, name string) (created bool, err error) {
	results := ResultsName(name)
	if err := ValidateName(results); err != nil {
		return false, err
	}
	if _, err := Depth(conn, results); err == nil {
		return false, nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(results, true, false, false, false, sideQueueArguments(conn)); err != nil {
		return false, explainDeclareError(results, err)
	}
	return true, nil
}
