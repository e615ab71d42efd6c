package outcome

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Result records: the agent publishes one to QUEUE.results for every attempt it settles (the
// command exited, or its --timeout killed it), with publisher confirms, before it acks or gives
// back the item; `kubectl workqueue results` reads them. Like the exit codes, the fields are a
// contract between an agent and a plugin of other versions: add fields, never rename them.

// ContentTypeRecord is the content type of a record's message.
const ContentTypeRecord = "application/vnd.workqueue.record+json"

// DefaultResultSize is how much of a command's result a record holds unless told otherwise:
// results wait in the broker's memory until they are read.
const DefaultResultSize = 4096

// Output sources of a record.
const (
	OutputFromFile   = "file"   // the file the command wrote to $WORKQUEUE_RESULT_FILE
	OutputFromStdout = "stdout" // the end of the command's standard output
)

// Record is what happened to one attempt at one item.
type Record struct {
	Queue      string    `json:"queue"`
	MessageID  string    `json:"messageId"`
	Item       string    `json:"item"` // a short, printable preview of the body
	Attempt    int       `json:"attempt"`
	Result     string    `json:"result"` // ResultDone or ResultFailed
	ExitCode   *int      `json:"exitCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"durationMs"`
	Pod        string    `json:"pod"`
	FinishedAt time.Time `json:"finishedAt"`
	// Output is the command's result: what it wrote to $WORKQUEUE_RESULT_FILE, else the end of
	// its standard output, cut to the agent's --result-size from the front. Output that is not
	// UTF-8 is in OutputBase64 instead.
	Output          string `json:"output,omitempty"`
	OutputBase64    string `json:"outputBase64,omitempty"`
	OutputFrom      string `json:"outputFrom,omitempty"`
	OutputTruncated bool   `json:"outputTruncated,omitempty"`
}

// SetOutput stores output as text when it is UTF-8, else as base64.
func (r *Record) SetOutput(output []byte, from string, truncated bool) {
	r.OutputFrom, r.OutputTruncated = from, truncated
	if utf8.Valid(output) {
		r.Output, r.OutputBase64 = string(output), ""
		return
	}
	r.Output, r.OutputBase64 = "", base64.StdEncoding.EncodeToString(output)
}

// OutputBytes returns the output as it was written.
func (r Record) OutputBytes() ([]byte, error) {
	if r.OutputBase64 != "" {
		return base64.StdEncoding.DecodeString(r.OutputBase64)
	}
	return []byte(r.Output), nil
}

// DecodeRecord parses a record's message body.
func DecodeRecord(body []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(body, &r); err != nil {
		return Record{}, fmt.Errorf("not a result record: %w", err)
	}
	if r.MessageID == "" || r.Result == "" {
		return Record{}, fmt.Errorf("not a result record: no messageId or result")
	}
	return r, nil
}
