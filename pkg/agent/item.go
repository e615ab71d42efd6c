package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// maxPreviewRunes keeps an item's preview short enough for a log line and a termination message.
const maxPreviewRunes = 64

// item is what the agent knows about one delivery before it runs the command.
type item struct {
	messageID string // the AMQP message id, or a hash of the body when the publisher set none
	attempt   int    // 1 for the first delivery
	preview   string // a short, printable first line of the body
	delivery  amqp.Delivery
}

func newItem(d amqp.Delivery) item {
	return item{
		messageID: messageID(d),
		attempt:   attempt(d),
		preview:   preview(d.Body),
		delivery:  d,
	}
}

// subject names the item and its attempt in a log line.
func (it item) subject() string {
	if it.preview != "" {
		return fmt.Sprintf("item %s %q attempt %d", it.messageID, it.preview, it.attempt)
	}
	return fmt.Sprintf("item %s attempt %d", it.messageID, it.attempt)
}

// messageID returns the publisher's message id, or else a hash of the body: stable across
// redeliveries, so retries of one item can be told apart from other items.
func messageID(d amqp.Delivery) string {
	if d.MessageId != "" {
		return d.MessageId
	}
	sum := sha256.Sum256(d.Body)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// attempt numbers deliveries from 1. Quorum queues count earlier deliveries in the
// x-delivery-count header (absent or 0 on the first one); classic queues only say whether the
// message was delivered before, so every redelivery there reads as attempt 2.
func attempt(d amqp.Delivery) int {
	if count, ok := deliveryCount(d.Headers["x-delivery-count"]); ok && count >= 0 {
		return int(count) + 1
	}
	if d.Redelivered {
		return 2
	}
	return 1
}

func deliveryCount(value any) (int64, bool) {
	switch v := value.(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case int:
		return int64(v), true
	case uint64:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint8:
		return int64(v), true
	default:
		return 0, false
	}
}

// preview returns the first line of a body, with anything unprintable replaced, cut to a few
// dozen characters: enough to recognise an item in a log line or in `kubectl workqueue run`.
func preview(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	var b strings.Builder
	runes := 0
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		line = line[size:]
		if runes == maxPreviewRunes {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError && size <= 1:
			r = '\uFFFD'
		case r == '\t':
			r = ' '
		case !unicode.IsPrint(r):
			r = '\uFFFD'
		}
		b.WriteRune(r)
		runes++
	}
	return strings.TrimSpace(b.String())
}
