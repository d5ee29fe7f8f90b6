package exchangetest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file holds a small OData $filter evaluator, enough for what the
// Graph mail API documents
// (https://learn.microsoft.com/graph/filter-query-parameter):
// eq ne gt ge lt le, and or not, parentheses, string literals ('' escapes
// a quote), true false null, numbers, unquoted DateTimeOffset literals,
// startswith/endswith/contains, cast(x, Edm.Boolean), and any/all lambdas
// over collections, such as
// singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
// String comparisons are case-insensitive, as Exchange's are, except the
// Name part of an extended property id, which is case-sensitive (same page).
//
// A filter is bound to the type it filters (see edmType in query.go):
// every property path must exist on that type, or on the element type of
// the collection a lambda variable ranges over, else Graph answers 400
// RequestBroker--ParseUri "Could not find a property named 'isJunk' on
// type 'microsoft.graph.message'." (reported in
// https://github.com/wslyvh/paperweight/issues/1). A property that exists
// but that the emulator cannot evaluate (fields.go binds only some)
// answers 501 rather than a wrong, empty result (see notEmulated).

// fields looks up a property path of one entity. For a collection it
// returns []fields; an element of a primitive collection answers path "".
type fields func(path string) (any, bool)

type predicate func(fields) bool

type node func(fields) any

// parsedFilter is a $filter bound to its type.
type parsedFilter struct {
	pred predicate
	// props are the properties the filter names outside lambda
	// variables, as canonical paths (lower case, "/"-separated), once
	// each, in the order they first appear: the order that $orderby must
	// follow on messages (see checkOrderByFilter).
	props []string
}

// parseFilter parses src; with a nil scope it checks no property names
// (the evaluator's own tests). An empty src parses to a nil predicate. A
// filter that parses but names a property the emulator cannot evaluate
// returns its props with the notEmulated error.
func parseFilter(src string, sc *scope) (parsedFilter, error) {
	if strings.TrimSpace(src) == "" {
		return parsedFilter{}, nil
	}
	toks, err := tokenize(src)
	if err != nil {
		return parsedFilter{}, err
	}
	p := &parser{toks: toks, sc: sc}
	n, err := p.expr()
	if err != nil {
		return parsedFilter{}, err
	}
	if p.pos != len(p.toks) {
		return parsedFilter{}, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if p.notEmulated != nil {
		return parsedFilter{props: p.props}, p.notEmulated
	}
	return parsedFilter{pred: func(f fields) bool { return truthy(n(f)) }, props: p.props}, nil
}

// queryError is a query option Graph refuses (or that the emulator cannot
// emulate): the status, code and message of the answer.
type queryError struct {
	status        int
	code, message string
}

func (e *queryError) Error() string { return e.message }

func (e *queryError) reply(c *call) *reply {
	return graphError(c, e.status, e.code, e.message).ref()
}

// Graph's answer to a property path that does not exist on its type, in a
// $filter or an $orderby (https://github.com/wslyvh/paperweight/issues/1).
const (
	codeParseURI    = "RequestBroker--ParseUri"
	msgNoProperty   = "Could not find a property named '%s' on type '%s'."
	codeNotEmulated = "NotImplemented"
)

func noProperty(name, typ string) *queryError {
	return &queryError{http.StatusBadRequest, codeParseURI, fmt.Sprintf(msgNoProperty, name, typ)}
}

// notEmulated answers a query option, or a property in one, that Graph
// serves and the emulator does not: 501 NotImplemented (the emulator's own
// answer; https://learn.microsoft.com/graph/errors lists 501 "The
// requested feature isn't implemented."), so that a client test fails
// loudly instead of passing on a result Graph would not give.
func notEmulated(what string) *queryError {
	return &queryError{http.StatusNotImplemented, codeNotEmulated, what + " is not emulated by exchangetest."}
}

// scope is what a filter or an $orderby is bound to: an entity type, the
// API version (some properties are beta only) and the lambda variables in
// reach.
type scope struct {
	typ  *edmType
	beta bool
	vars []lambdaVar
}

// lambdaVar is a lambda variable: its name, the type of the elements it
// ranges over (nil for primitives) and the canonical path of their
// collection.
type lambdaVar struct {
	name string
	elem *edmType
	coll string
}

// resolved is a property path bound to its type.
type resolved struct {
	prop *edmProp // the last property; nil for a lambda variable alone
	// canon is the path from the root type, lower case: the key of
	// edmType.emulated ("flag/flagstatus", "singlevalueextendedproperties/id").
	canon string
	// top is the path as named from the root type, "" under a lambda
	// variable.
	top string
}

// resolve binds path (segments separated by "/") to sc: a lambda variable
// and its properties, or properties of the root type.
func (sc *scope) resolve(path string) (resolved, error) {
	segs := strings.Split(path, "/")
	t, canon, top := sc.typ, "", true
	for i := len(sc.vars) - 1; i >= 0; i-- {
		if v := sc.vars[i]; v.name == segs[0] {
			if len(segs) == 1 {
				return resolved{canon: v.coll}, nil
			}
			t, canon, top, segs = v.elem, v.coll, false, segs[1:]
			break
		}
	}
	var prop *edmProp
	for i, s := range segs {
		if t == nil {
			return resolved{}, noProperty(s, "Edm.String")
		}
		p, ok := t.prop(s, sc.beta)
		if !ok {
			return resolved{}, noProperty(s, t.name)
		}
		if p.coll && i < len(segs)-1 {
			return resolved{}, &queryError{http.StatusBadRequest, codeParseURI, fmt.Sprintf(
				"The parent value for a property access of a property '%s' is not a single value. Property access can only be applied to a single value.", segs[i+1])}
		}
		canon = joinPath(canon, strings.ToLower(p.name))
		prop, t = p, p.typ
	}
	r := resolved{prop: prop, canon: canon}
	if top {
		r.top = canon
	}
	return r, nil
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "/" + b
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tPunct
)

type token struct {
	kind tokKind
	text string
}

func tokenize(src string) ([]token, error) {
	var toks []token
	r := []rune(src)
	for i := 0; i < len(r); {
		ch := r[i]
		switch {
		case unicode.IsSpace(ch):
			i++
		case strings.ContainsRune("(),:", ch):
			toks = append(toks, token{tPunct, string(ch)})
			i++
		case ch == '\'':
			var sb strings.Builder
			i++
			closed := false
			for i < len(r) {
				if r[i] == '\'' {
					if i+1 < len(r) && r[i+1] == '\'' {
						sb.WriteRune('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				sb.WriteRune(r[i])
				i++
			}
			if !closed {
				return nil, errors.New("unterminated string literal")
			}
			toks = append(toks, token{tString, sb.String()})
		case unicode.IsDigit(ch) || ch == '-':
			// Numbers and unquoted DateTimeOffset literals.
			j := wordEnd(r, i+1, ":-+.")
			toks = append(toks, token{tNumber, string(r[i:j])})
			i = j
		case unicode.IsLetter(ch) || ch == '_' || ch == '$' || ch == '@':
			// Identifiers, property paths and lambda collections.
			j := wordEnd(r, i+1, "_/.@$")
			toks = append(toks, token{tIdent, string(r[i:j])})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", ch)
		}
	}
	return toks, nil
}

// wordEnd returns the index after the run of letters, digits and runes of
// extra that starts at r[i].
func wordEnd(r []rune, i int, extra string) int {
	for i < len(r) && (unicode.IsLetter(r[i]) || unicode.IsDigit(r[i]) || strings.ContainsRune(extra, r[i])) {
		i++
	}
	return i
}

type parser struct {
	toks []token
	pos  int
	sc   *scope // nil: names are not checked
	// notEmulated is the first property the emulator cannot evaluate;
	// it is answered only when the filter has no error Graph would give.
	notEmulated error
	props       []string // see parsedFilter.props
}

// path binds a property path of the filter (see scope.resolve) and notes
// what parsedFilter needs; with a nil scope it accepts any path.
func (p *parser) path(word string) (resolved, error) {
	if p.sc == nil {
		return resolved{}, nil
	}
	r, err := p.sc.resolve(word)
	if err != nil {
		return resolved{}, err
	}
	if r.top != "" && !slices.Contains(p.props, r.top) {
		p.props = append(p.props, r.top)
	}
	if p.notEmulated == nil && !p.sc.typ.emulated[r.canon] {
		p.notEmulated = notEmulated(fmt.Sprintf("$filter on '%s' of %s", word, p.sc.typ.name))
	}
	return r, nil
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) isWord(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == tIdent && strings.EqualFold(t.text, w)
}

func (p *parser) isPunct(s string) bool {
	t, ok := p.peek()
	return ok && t.kind == tPunct && t.text == s
}

func (p *parser) expect(s string) error {
	if !p.isPunct(s) {
		return fmt.Errorf("expected %q", s)
	}
	p.pos++
	return nil
}

func (p *parser) expr() (node, error) { return p.chain("or", p.and, true) }

func (p *parser) and() (node, error) { return p.chain("and", p.unary, false) }

// chain parses operand {word operand}, a left-associative chain of the
// boolean operator word ("or" or "and"). decisive is the value of a left
// side that decides the result without evaluating the right side: true
// for "or", false for "and".
func (p *parser) chain(word string, operand func() (node, error), decisive bool) (node, error) {
	left, err := operand()
	if err != nil {
		return nil, err
	}
	for p.isWord(word) {
		p.pos++
		right, err := operand()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(f fields) any {
			if truthy(l(f)) == decisive {
				return decisive
			}
			return truthy(right(f))
		}
	}
	return left, nil
}

func (p *parser) unary() (node, error) {
	if p.isWord("not") {
		p.pos++
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(f fields) any { return !truthy(n(f)) }, nil
	}
	return p.comparison()
}

var compareOps = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

func (p *parser) comparison() (node, error) {
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	t, ok := p.peek()
	if !ok || t.kind != tIdent || !compareOps[strings.ToLower(t.text)] {
		return left, nil
	}
	p.pos++
	right, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := strings.ToLower(t.text)
	return func(f fields) any { return compare(op, left(f), right(f)) }, nil
}

func (p *parser) operand() (node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, errors.New("unexpected end of filter")
	}
	switch t.kind {
	case tPunct:
		if t.text != "(" {
			return nil, fmt.Errorf("unexpected %q", t.text)
		}
		p.pos++
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		return n, p.expect(")")
	case tString:
		p.pos++
		v := t.text
		return func(fields) any { return v }, nil
	case tNumber:
		p.pos++
		if ts, err := time.Parse(time.RFC3339Nano, t.text); err == nil {
			return func(fields) any { return ts }, nil
		}
		fv, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("bad literal %q", t.text)
		}
		return func(fields) any { return fv }, nil
	}
	// Identifier: keyword literal, function call, lambda, or path.
	p.pos++
	word := t.text
	switch strings.ToLower(word) {
	case "true":
		return func(fields) any { return true }, nil
	case "false":
		return func(fields) any { return false }, nil
	case "null":
		return func(fields) any { return nil }, nil
	}
	if !p.isPunct("(") {
		if _, err := p.path(word); err != nil {
			return nil, err
		}
		return func(f fields) any { v, _ := f(word); return v }, nil
	}
	lw := strings.ToLower(word)
	if i := strings.LastIndex(lw, "/"); i > 0 && (lw[i+1:] == "any" || lw[i+1:] == "all") {
		return p.lambda(word[:i], lw[i+1:] == "all")
	}
	p.pos++ // (
	var args []node
	for !p.isPunct(")") {
		if len(args) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		if t, ok := p.peek(); ok && t.kind == tIdent && strings.HasPrefix(t.text, "Edm.") {
			p.pos++
			typ := t.text
			args = append(args, func(fields) any { return edmTypeName(typ) })
			continue
		}
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	p.pos++ // )
	return function(lw, args)
}

type edmTypeName string

func function(name string, args []node) (node, error) {
	two := func(fn func(a, b string) bool) (node, error) {
		if len(args) != 2 {
			return nil, fmt.Errorf("%s takes 2 arguments", name)
		}
		return func(f fields) any {
			a, aok := asString(args[0](f))
			b, bok := asString(args[1](f))
			return aok && bok && fn(strings.ToLower(a), strings.ToLower(b))
		}, nil
	}
	switch name {
	case "startswith":
		return two(strings.HasPrefix)
	case "endswith":
		return two(strings.HasSuffix)
	case "contains":
		return two(strings.Contains)
	case "cast":
		if len(args) != 2 {
			return nil, errors.New("cast takes 2 arguments")
		}
		return func(f fields) any {
			v := args[0](f)
			s, ok := asString(v)
			if !ok {
				return v
			}
			switch strings.ToLower(string(args[1](f).(edmTypeName))) {
			case "edm.boolean":
				return strings.EqualFold(s, "true")
			case "edm.int32", "edm.int64", "edm.double":
				fv, _ := strconv.ParseFloat(s, 64)
				return fv
			case "edm.datetimeoffset":
				t, _ := time.Parse(time.RFC3339Nano, s)
				return t
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("unsupported function %q", name)
}

func (p *parser) lambda(collection string, all bool) (node, error) {
	coll, err := p.path(collection)
	if err != nil {
		return nil, err
	}
	if p.sc != nil && (coll.prop == nil || !coll.prop.coll) {
		// ODL's message (Graph parses URIs with it).
		return nil, &queryError{http.StatusBadRequest, codeParseURI, "Any/All may only be used following a collection."}
	}
	p.pos++ // (
	t, ok := p.peek()
	if !ok || t.kind != tIdent {
		return nil, errors.New("expected lambda variable")
	}
	v := t.text
	p.pos++
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	if p.sc != nil {
		p.sc.vars = append(p.sc.vars, lambdaVar{name: v, elem: coll.prop.typ, coll: coll.canon})
	}
	body, err := p.expr()
	if p.sc != nil {
		p.sc.vars = p.sc.vars[:len(p.sc.vars)-1]
	}
	if err != nil {
		return nil, err
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return func(f fields) any {
		coll, _ := f(collection)
		elems, _ := coll.([]fields)
		for _, el := range elems {
			env := func(path string) (any, bool) {
				if path == v {
					return el("")
				}
				if rest, ok := strings.CutPrefix(path, v+"/"); ok {
					return el(rest)
				}
				return f(path)
			}
			if got := truthy(body(env)); got != all {
				return got
			}
		}
		return all
	}, nil
}

func truthy(v any) bool { b, _ := v.(bool); return b }

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case propID:
		return string(x), true
	}
	return "", false
}

func compare(op string, a, b any) bool {
	c, ok := order(a, b)
	if !ok {
		switch op {
		case "eq":
			return false
		case "ne":
			return true
		}
		return false
	}
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

// order compares two values; ok is false when they cannot be compared.
func order(a, b any) (int, bool) {
	if a == nil || b == nil {
		if a == nil && b == nil {
			return 0, true
		}
		return 1, false
	}
	if pa, ok := a.(propID); ok {
		if bs, ok := asString(b); ok {
			return strings.Compare(normalizePropID(string(pa)), normalizePropID(bs)), true
		}
	}
	if pb, ok := b.(propID); ok {
		if as, ok := asString(a); ok {
			return strings.Compare(normalizePropID(as), normalizePropID(string(pb))), true
		}
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(strings.ToLower(x), strings.ToLower(y)), true
		}
	case bool:
		if y, ok := b.(bool); ok {
			if x == y {
				return 0, true
			}
			return 1, true
		}
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y), true
		}
	}
	return 0, false
}
