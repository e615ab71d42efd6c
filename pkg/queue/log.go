package queue

import "k8s.io/klog/v2"

// amqpLogLevel is the klog verbosity of AMQP operations: kubectl's -v=6 logs each API request,
// and the plugin logs each AMQP operation at the same level. Never bodies, never a password.
const amqpLogLevel = 6

// logOp logs one AMQP operation and its outcome.
func logOp(op string, err error, keysAndValues ...any) {
	logger := klog.V(amqpLogLevel)
	if !logger.Enabled() {
		return
	}
	if err != nil {
		keysAndValues = append(keysAndValues, "error", err.Error())
	}
	logger.InfoS("AMQP "+op, keysAndValues...)
}
