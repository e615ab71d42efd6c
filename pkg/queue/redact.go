package queue

import (
	"net/url"
	"strconv"
	"strings"
)

// redactedPassword stands where a password was.
const redactedPassword = "xxxxx"

// Redactor hides a broker password from everything a program prints. The URL usually comes from
// a Secret, while logs, pod termination messages and terminal output are read by far more people.
type Redactor struct {
	url       string   // the URL with the password replaced
	rawURL    string   // the URL as given
	passwords []string // the password as written, unescaped and quoted
}

// NewRedactor returns a Redactor for the password in rawURL. It finds the password even when the
// URL does not parse (an unescaped '/' or '@' in a password is a common mistake, and the URL
// parser's error then quotes the whole URL), and in the escaped, unescaped and quoted forms that
// error messages may hold.
func NewRedactor(rawURL string) Redactor {
	r := Redactor{url: redactURL(rawURL), rawURL: rawURL}
	if password := rawPassword(rawURL); password != "" {
		r.passwords = append(r.passwords, password)
		if unescaped, err := url.PathUnescape(password); err == nil && unescaped != password {
			r.passwords = append(r.passwords, unescaped)
		}
		if quoted := strconv.Quote(password); quoted[1:len(quoted)-1] != password {
			r.passwords = append(r.passwords, quoted[1:len(quoted)-1])
		}
	}
	return r
}

// URL is the URL with its password replaced, fit for a message.
func (r Redactor) URL() string { return r.url }

// Redact replaces the URL and the password wherever they appear in s.
func (r Redactor) Redact(s string) string {
	if r.rawURL != "" {
		s = strings.ReplaceAll(s, r.rawURL, r.url)
	}
	for _, password := range r.passwords {
		s = strings.ReplaceAll(s, password, redactedPassword)
	}
	return s
}

// Redact hides the password of an AMQP URL so it can appear in a message.
func Redact(rawURL string) string { return redactURL(rawURL) }

func redactURL(rawURL string) string {
	if rawURL == "" {
		return "(empty URL)"
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		scheme, rest, found := strings.Cut(rawURL, "://")
		if !found {
			// No scheme to tell the parts apart: it may be a password typed in the wrong place.
			return "(unparseable URL)"
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user, _, _ := strings.Cut(rest[:at], ":")
			return scheme + "://" + user + ":" + redactedPassword + "@" + rest[at+1:]
		}
		return rawURL
	}
	return u.Redacted()
}

// rawPassword extracts the password as written in the URL, without trusting the URL to parse.
func rawPassword(rawURL string) string {
	_, rest, found := strings.Cut(rawURL, "://")
	if !found {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, password, found := strings.Cut(rest[:at], ":")
	if !found {
		return ""
	}
	return password
}

// scrub removes the password from an error's text, whatever the library put in it, keeping the
// error's chain when there was nothing to remove.
func scrub(err error, rawURL string) error {
	r := NewRedactor(rawURL)
	text := err.Error()
	if redacted := r.Redact(text); redacted != text {
		return scrubbed{text: redacted, err: err}
	}
	return err
}

// scrubbed is an error whose text had the password removed. Unwrap keeps errors.As working for
// callers that classify it; the wrapped error's own text is never printed.
type scrubbed struct {
	text string
	err  error
}

func (e scrubbed) Error() string { return e.text }
func (e scrubbed) Unwrap() error { return e.err }
