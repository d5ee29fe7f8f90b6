package exchangetest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file applies the OData query options other than the $filter
// language itself (filter.go): $top, $skip, $count and paging, $select,
// and $expand of extended properties
// (https://learn.microsoft.com/graph/query-parameters).

// filterQuery parses $filter. One that does not parse answers 400
// BadRequest "Invalid filter clause: …" (the emulator's own answer).
func filterQuery(c *call) (predicate, *reply) {
	pred, err := parseFilter(c.query.Get("$filter"))
	if err != nil {
		return nil, graphError(c, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+err.Error()).ref()
	}
	return pred, nil
}

// page applies $top/$skip/$select/$count to a collection and adds
// @odata.nextLink when more items remain
// (https://learn.microsoft.com/graph/paging).
func (s *Server) page(c *call, items []map[string]any) reply {
	top, rep := countOption(c, "$top", 10)
	if rep != nil {
		return *rep
	}
	top = min(top, 1000)
	skip, rep := countOption(c, "$skip", 0)
	if rep != nil {
		return *rep
	}
	total := len(items)
	end := min(skip+top, total)
	var pageItems []map[string]any
	if skip < total {
		pageItems = items[skip:end]
	}
	sel := c.selected()
	value := make([]map[string]any, 0, len(pageItems))
	for _, it := range pageItems {
		value = append(value, applySelect(it, sel))
	}
	out := map[string]any{"value": value}
	if strings.EqualFold(c.query.Get("$count"), "true") {
		out["@odata.count"] = total
	}
	if end < total {
		q := url.Values{}
		for k, v := range c.query {
			q[k] = slices.Clone(v)
		}
		q.Set("$skip", itoa(end))
		q.Set("$top", itoa(top))
		out["@odata.nextLink"] = s.baseURL(c) + "/" + escapeSegs(c.segs) + "?" + q.Encode()
	}
	return jsonReply(http.StatusOK, out)
}

// countOption reads the query option name ($top or $skip), def when it
// is absent. One that is not a non-negative integer answers 400
// BadRequest "Invalid $top value." (the emulator's own answer).
func countOption(c *call, name string, def int) (int, *reply) {
	v := c.query.Get(name)
	if v == "" {
		return def, nil
	}
	n, ok := atoi(v)
	if !ok || n < 0 {
		return 0, graphError(c, http.StatusBadRequest, "BadRequest", "Invalid "+name+" value.").ref()
	}
	return n, nil
}

func escapeSegs(segs []string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return strings.Join(esc, "/")
}

// selected returns the properties $select names, nil without $select.
func (c *call) selected() []string { return selectList(c.query.Get("$select")) }

func selectList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// applySelect keeps only the $select-ed properties, plus id and the OData
// annotations (https://learn.microsoft.com/graph/query-parameters#select-parameter).
func applySelect(m map[string]any, sel []string) map[string]any {
	if len(sel) == 0 {
		return m
	}
	out := map[string]any{}
	for k, v := range m {
		if k == "id" || strings.HasPrefix(k, "@odata.") || k == "singleValueExtendedProperties" {
			out[k] = v
			continue
		}
		for _, f := range sel {
			if strings.EqualFold(f, k) {
				out[k] = v
			}
		}
	}
	return out
}

// propExpansion picks the expanded extended properties of a message; a
// nil propExpansion expands none.
type propExpansion func(*message) []extProp

// of returns the properties of m that e expands: nil when e is nil, else
// a list, possibly empty.
func (e propExpansion) of(m *message) []extProp {
	if e == nil {
		return nil
	}
	return e(m)
}

// expandQuery parses $expand (see expandProps). One that does not parse
// answers 400 BadRequest "Invalid expand clause: …" (the emulator's own
// answer).
func expandQuery(c *call) (propExpansion, *reply) {
	e, err := expandProps(c.query.Get("$expand"))
	if err != nil {
		return nil, graphError(c, http.StatusBadRequest, "BadRequest", "Invalid expand clause: "+err.Error()).ref()
	}
	return e, nil
}

// expandProps parses $expand=singleValueExtendedProperties($filter=id eq '…')
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get)
// and returns the expansion of the properties, nil when they are not
// expanded.
func expandProps(expand string) (propExpansion, error) {
	for _, item := range splitTopLevel(expand, ',') {
		item = strings.TrimSpace(item)
		name, opts, hasOpts := strings.Cut(item, "(")
		if !strings.EqualFold(strings.TrimSpace(name), "singleValueExtendedProperties") {
			continue // other expansions are not emulated and are ignored
		}
		var pred predicate
		if hasOpts {
			opts = strings.TrimSuffix(strings.TrimSpace(opts), ")")
			for _, opt := range splitTopLevel(opts, ';') {
				k, v, _ := strings.Cut(opt, "=")
				if strings.EqualFold(strings.TrimSpace(k), "$filter") {
					p, err := parseFilter(v)
					if err != nil {
						return nil, err
					}
					pred = p
				}
			}
		}
		return func(m *message) []extProp {
			out := []extProp{}
			for _, p := range m.props {
				if pred == nil || pred(propFields(p)) {
					out = append(out, p)
				}
			}
			return out
		}, nil
	}
	return nil, nil
}

// splitTopLevel splits s at sep outside parentheses and string literals.
func splitTopLevel(s string, sep rune) []string {
	var out []string
	depth, start := 0, 0
	inStr := false
	for i, r := range s {
		switch {
		case r == '\'':
			inStr = !inStr
		case inStr:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func itoa(n int) string { return strconv.Itoa(n) }
