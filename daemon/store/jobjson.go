package store

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJob encodes j as json.Marshal would (the same fields and names,
// decoded by DecodeJob), without reflection: a job is encoded for every
// message ingested and at every state change, inside or next to the
// group commit, where encoding/json's reflection and its re-validation
// of Request were a tenth of ingest's CPU. Request must be valid JSON
// (callers encode it with encoding/json); nil is written as null.
func appendJob(b []byte, j Job) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, j.ID, 10)
	b = append(b, `,"pipeline":`...)
	b = appendString(b, j.Pipeline)
	b = appendField(b, "source", j.Source)
	b = appendField(b, "model", j.Model)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(j.Priority), 10)
	b = append(b, `,"state":`...)
	b = appendString(b, string(j.State))
	b = append(b, `,"request":`...)
	if j.Request == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, j.Request...)
	}
	b = appendField(b, "key", j.Key)
	b = appendField(b, "coalesce", j.Coalesce)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, j.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, j.UpdatedAt)
	if !j.NotBefore.IsZero() {
		b = append(b, `,"not_before":`...)
		b = appendTime(b, j.NotBefore)
	}
	if j.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(j.Attempts), 10)
	}
	if j.Merged != 0 {
		b = append(b, `,"merged":`...)
		b = strconv.AppendInt(b, int64(j.Merged), 10)
	}
	b = appendField(b, "error", j.Error)
	if j.ResultSeq != 0 {
		b = append(b, `,"result_seq":`...)
		b = strconv.AppendUint(b, j.ResultSeq, 10)
	}
	return append(b, '}')
}

// appendField writes ,"name":"value" unless value is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(append(append(b, ',', '"'), name...), '"', ':')
	return appendString(b, value)
}

// appendTime writes t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does:
// control characters, <, > and & escaped, U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
