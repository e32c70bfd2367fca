package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// evaluateCheck compares a check's result with its expectations and
// returns an error matching ErrCheckFailed that lists every miss.
func evaluateCheck(c Check, res CheckResult, compile SchemaCompiler) error {
	var misses []string
	for _, s := range c.Contains {
		if !strings.Contains(res.Output, s) {
			misses = append(misses, fmt.Sprintf("output does not contain %q", s))
		}
	}
	for _, s := range c.NotContains {
		if strings.Contains(res.Output, s) {
			misses = append(misses, fmt.Sprintf("output contains %q", s))
		}
	}
	if c.MinTokensPerSecond > 0 && res.TokensPerSecond < c.MinTokensPerSecond {
		misses = append(misses, fmt.Sprintf("%.1f tokens/s, want at least %.1f", res.TokensPerSecond, c.MinTokensPerSecond))
	}
	if c.MaxFirstTokenLatency > 0 && res.FirstTokenLatency > c.MaxFirstTokenLatency.D() {
		misses = append(misses, fmt.Sprintf("first token after %v, want at most %v",
			res.FirstTokenLatency.Round(time.Millisecond), c.MaxFirstTokenLatency.D()))
	}
	if c.JSONSchema != nil {
		if err := checkSchema(c.JSONSchema, res.Output, compile); err != nil {
			misses = append(misses, err.Error())
		}
	}
	if len(misses) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s (output: %s)", ErrCheckFailed, strings.Join(misses, "; "), abbreviate(res.Output, 120))
}

// checkSchema validates the output, as JSON, against schema. The output
// may be wrapped in whitespace and in one Markdown code fence, as
// instruction models tend to write JSON.
func checkSchema(schema RawJSON, output string, compile SchemaCompiler) error {
	if compile == nil {
		return ErrNoSchemaValidator
	}
	v, err := compile(schema)
	if err != nil {
		return fmt.Errorf("json_schema does not compile: %w", err)
	}
	doc := []byte(unfence(output))
	if !json.Valid(doc) {
		return fmt.Errorf("output is not JSON")
	}
	if err := v.Validate(doc); err != nil {
		return fmt.Errorf("output does not match json_schema: %w", err)
	}
	return nil
}

// unfence trims whitespace and one surrounding ``` fence (with an
// optional language tag).
func unfence(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "```") || !strings.HasSuffix(s, "```") || len(s) < 6 {
		return s
	}
	body := s[3 : len(s)-3]
	if i := strings.IndexByte(body, '\n'); i >= 0 && !bytes.ContainsAny([]byte(body[:i]), "{[\"") {
		body = body[i+1:]
	}
	return strings.TrimSpace(body)
}
