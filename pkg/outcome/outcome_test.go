package outcome

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	code := 2
	in := Outcome{Result: ResultFailed, Item: "apple", MessageID: "1-ab", Attempt: 2, DurationMS: 1500, ExitCode: &code}
	out, err := Decode(string(in.Encode()))
	if err != nil || out.Result != in.Result || out.Item != "apple" || *out.ExitCode != 2 || out.Attempt != 2 {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestEncodeFitsATerminationMessage(t *testing.T) {
	huge := Outcome{Result: ResultError, Error: strings.Repeat("e", 10_000), Item: strings.Repeat("ü", 5_000), MessageID: "id"}
	data := huge.Encode()
	if len(data) > MaxTerminationMessageBytes || !json.Valid(data) {
		t.Fatalf("%d bytes, valid %v", len(data), json.Valid(data))
	}
	out, err := Decode(string(data))
	if err != nil || out.Result != ResultError || out.MessageID != "id" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestDecodeRejectsOtherMessages(t *testing.T) {
	for _, message := range []string{"", "Processing apple", `{"item":"x"}`, "Error: exit 1\n"} {
		if _, err := Decode(message); err == nil {
			t.Errorf("%q decoded as an outcome", message)
		}
	}
}
