package exchangetest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file applies the OData query options other than the $filter
// language itself (filter.go): which options a request may carry, $top,
// $skip, $count and paging, $select, $orderby, and $expand of extended
// properties (https://learn.microsoft.com/graph/query-parameters). It
// also holds the types the options are checked against (edmType).
//
// checkQuery checks every routed request before it is served; the
// handlers then read the options they emulate (filterQuery, expandQuery,
// page, selected), which check again what they read.

// checkQuery checks the query options of a request routed to kind (see
// route.kind): the first one Graph would refuse answers its error; one
// Graph serves and the emulator does not answers 501 (see notEmulated),
// but only when no option is refused. It also rewrites c.query to the
// options' canonical names ("top" and "$Top" become "$top"), so that the
// handlers find them.
func checkQuery(c *call, kind string) *reply {
	if err := checkOptions(c, kind); err != nil {
		return err.reply(c)
	}
	return nil
}

// systemOptions are the OData system query options
// (https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html#sec_SystemQueryOptions,
// https://learn.microsoft.com/graph/query-parameters), by canonical name.
var systemOptions = map[string]bool{
	"$filter": true, "$select": true, "$expand": true, "$orderby": true,
	"$top": true, "$skip": true, "$count": true, "$search": true,
	"$format": true, "$skiptoken": true, "$deltatoken": true, "$apply": true,
	"$compute": true, "$index": true, "$levels": true, "$schemaversion": true,
}

// collectionOnly are the options that apply to collections only.
var collectionOnly = []string{"$filter", "$orderby", "$top", "$skip", "$count", "$search"}

// normalizeQuery rewrites c.query to canonical option names and refuses
// what Graph refuses in the names alone:
//
//   - A system query option may be named without its "$": "On the beta
//     endpoint, the $ prefix is optional", and on v1.0 for a subset of
//     APIs (https://learn.microsoft.com/graph/query-parameters); Outlook's
//     messages honour top and select without "$" under v1.0 (reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/6006),
//     so both versions take both spellings. Names are matched
//     case-insensitively, as OData 4.01 allows
//     (https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html#sec_QueryOptions);
//     that Graph does so is the emulator's choice.
//   - An option given twice answers 400 BadRequest "Query option '$top'
//     was specified more than once, but it must be specified at most
//     once." (reported in https://github.com/microsoftgraph/msgraph-sdk-php/issues/127).
//   - A "$" name that is no system query option answers 400 BadRequest:
//     a service "MUST reject any requests which contain the unsupported
//     option" (MS-ODATA,
//     https://learn.microsoft.com/openspecs/windows_protocols/ms-odata/72d4ebf9-5480-49a4-b88b-c5782f726c87);
//     the message is the emulator's own.
//
// Other names are custom parameters (includeHiddenFolders) that the
// handlers read or ignore, as Graph ignores parameters it does not know.
func normalizeQuery(c *call) *queryError {
	names := make([]string, 0, len(c.query))
	for k := range c.query {
		names = append(names, k)
	}
	slices.Sort(names)
	out := url.Values{}
	for _, k := range names {
		vs := c.query[k]
		name := strings.ToLower(k)
		switch {
		case systemOptions[name]:
		case systemOptions["$"+name]:
			name = "$" + name
		case strings.HasPrefix(k, "$"):
			return &queryError{http.StatusBadRequest, "BadRequest", fmt.Sprintf("The query parameter '%s' is not supported.", k)}
		default:
			out[k] = vs
			continue
		}
		if _, dup := out[name]; dup || len(vs) > 1 {
			return &queryError{http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Query option '%s' was specified more than once, but it must be specified at most once.", name)}
		}
		out[name] = vs
	}
	c.query = out
	return nil
}

// routeType returns the type a GET of kind reads, and whether it is a
// collection of it; nil for the routes whose answer is no entity ($value).
func routeType(kind string) (*edmType, bool) {
	switch kind {
	case "folders", "children":
		return schema.mailFolder, true
	case "folder":
		return schema.mailFolder, false
	case "messages":
		return schema.message, true
	case "message":
		return schema.message, false
	case "attachments":
		return schema.attachment, true
	case "attachment":
		return schema.attachment, false
	}
	return nil, false
}

// checkOptions is checkQuery. Only GET reads entities: "These query
// options ... are supported in only GET operations"
// (https://learn.microsoft.com/graph/query-parameters), so other methods
// have their option names checked alone.
func checkOptions(c *call, kind string) *queryError {
	if err := normalizeQuery(c); err != nil {
		return err
	}
	if c.method != http.MethodGet && c.method != http.MethodHead {
		return nil
	}
	typ, coll := routeType(kind)
	if typ == nil {
		return nil
	}
	var later *queryError // the first option not emulated
	refused := func(err *queryError) bool {
		if err != nil && err.status == http.StatusNotImplemented {
			later = cmp.Or(later, err)
			return false
		}
		return err != nil
	}
	q := c.query
	has := func(name string) bool { _, ok := q[name]; return ok }
	if !coll {
		// The emulator's own answer: no page says what Graph does with
		// a collection option on a single entity.
		for _, name := range collectionOnly {
			if has(name) {
				return &queryError{http.StatusBadRequest, "BadRequest", fmt.Sprintf("The query option '%s' applies to collections only.", name)}
			}
		}
	}
	sc := &scope{typ: typ, beta: c.version == "beta"}
	if err := checkSelect(sc, q.Get("$select")); refused(err) {
		return err
	}
	if has("$expand") {
		if err := checkExpand(sc, q.Get("$expand"), coll); refused(err) {
			return err
		}
	}
	var filter parsedFilter
	if has("$filter") {
		f, err := filterOf(sc, q.Get("$filter"))
		if refused(err) {
			return err
		}
		if typ == schema.attachment && err == nil {
			later = cmp.Or(later, notEmulated("$filter on attachments"))
		}
		filter = f
	}
	if has("$orderby") {
		keys, err := parseOrderBy(sc, q.Get("$orderby"))
		if refused(err) {
			return err
		}
		if err == nil && typ == schema.message && has("$filter") {
			if err := checkOrderByFilter(filter.props, keys); err != nil {
				return err
			}
		}
	}
	if _, err := topOption(q, typ); err != nil {
		return err
	}
	if _, err := skipOption(q); err != nil {
		return err
	}
	if _, err := countOption(q); err != nil {
		return err
	}
	if has("$search") {
		later = cmp.Or(later, notEmulated("$search"))
	}
	if has("$format") {
		if f := strings.ToLower(q.Get("$format")); f != "json" && f != "application/json" {
			later = cmp.Or(later, notEmulated("$format="+q.Get("$format")))
		}
	}
	for _, name := range []string{"$skiptoken", "$deltatoken", "$apply", "$compute", "$index", "$levels", "$schemaversion"} {
		if has(name) {
			later = cmp.Or(later, notEmulated(name))
		}
	}
	return later
}

// filterQuery parses $filter, bound to the type of the collection that
// c lists. One that does not parse answers 400 BadRequest "Invalid filter
// clause: …" (the emulator's own answer); one that names a property the
// type does not have answers as Graph does (see filter.go).
func filterQuery(c *call) (predicate, *reply) {
	sc := &scope{typ: collectionType(c.segs), beta: c.version == "beta"}
	if sc.typ == nil {
		sc = nil
	}
	f, err := filterOf(sc, c.query.Get("$filter"))
	if err != nil {
		return nil, err.reply(c)
	}
	return f.pred, nil
}

// filterOf parses a $filter bound to sc, with the errors it answers.
// When the error is notEmulated, the filter's props are still returned.
func filterOf(sc *scope, src string) (parsedFilter, *queryError) {
	f, err := parseFilter(src, sc)
	if err != nil {
		if qe, ok := err.(*queryError); ok {
			return f, qe
		}
		return parsedFilter{}, &queryError{http.StatusBadRequest, "BadRequest", "Invalid filter clause: " + err.Error()}
	}
	return f, nil
}

// collectionType returns the type of the collection a path lists (its
// last segment), nil when it lists none.
func collectionType(segs []string) *edmType {
	switch strings.ToLower(lastSeg(segs)) {
	case "messages":
		return schema.message
	case "mailfolders", "childfolders":
		return schema.mailFolder
	case "attachments":
		return schema.attachment
	}
	return nil
}

// page applies $orderby/$top/$skip/$select/$count to a collection and
// adds @odata.nextLink when more items remain
// (https://learn.microsoft.com/graph/paging), and the collection's
// @odata.context (see contextURL).
func (s *Server) page(c *call, items []map[string]any) reply {
	typ := collectionType(c.segs)
	top, qe := topOption(c.query, typ)
	if qe != nil {
		return *qe.reply(c)
	}
	skip, qe := skipOption(c.query)
	if qe != nil {
		return *qe.reply(c)
	}
	count, qe := countOption(c.query)
	if qe != nil {
		return *qe.reply(c)
	}
	if ob := c.query.Get("$orderby"); ob != "" && typ != nil {
		keys, qe := parseOrderBy(&scope{typ: typ, beta: c.version == "beta"}, ob)
		if qe != nil {
			return *qe.reply(c)
		}
		sortItems(items, keys)
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
	out := map[string]any{"@odata.context": s.contextURL(c), "value": value}
	if count {
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

// maxMessagePage is the largest $top of a message listing: "Use $top to
// customize the page size, within the range of 1 and 1000"
// (https://learn.microsoft.com/graph/api/user-list-messages,
// https://learn.microsoft.com/graph/api/mailfolder-list-messages).
const maxMessagePage = 1000

// topOption reads $top from q, 10 when it is absent (the default page size of
// messages and folders: https://learn.microsoft.com/graph/api/user-list-messages,
// https://learn.microsoft.com/graph/api/user-list-mailfolders).
//
//   - Not a non-negative integer: 400 BadRequest "Invalid value 'x' for
//     $top query option found. The $top query option requires a
//     non-negative integer value." (reported in
//     https://github.com/dcblogdev/laravel-microsoft-graph/issues/90).
//   - 0: "The minimum value of $top is 1"
//     (https://learn.microsoft.com/graph/query-parameters#top-parameter);
//     400 BadRequest with the emulator's own message, although $top=0 on
//     messages is reported to answer without error
//     (https://github.com/microsoftgraph/microsoft-graph-docs/issues/13710).
//   - Over 1000 on messages (maxMessagePage): 400 BadRequest with the
//     emulator's own message; no page says what Graph answers.
//   - Over 1000 on folders and attachments, whose maximum no page gives:
//     the page holds 1000 and @odata.nextLink leads on (the emulator's
//     own choice; https://learn.microsoft.com/graph/paging allows it).
func topOption(q url.Values, typ *edmType) (int, *queryError) {
	if _, ok := q["$top"]; !ok {
		return 10, nil
	}
	v := q.Get("$top")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &queryError{http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", v)}
	}
	if n == 0 || (typ == schema.message && n > maxMessagePage) {
		return 0, &queryError{http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Invalid value '%s' for $top query option: the page size of %s is between 1 and %d.", v, pluralName(typ), maxMessagePage)}
	}
	return min(n, maxMessagePage), nil
}

func pluralName(typ *edmType) string {
	if typ == nil {
		return "a collection"
	}
	_, name, _ := strings.Cut(typ.name, "microsoft.graph.")
	return name + "s"
}

// skipOption reads $skip from q, 0 when it is absent; one that is not a
// non-negative integer answers 400 BadRequest "Invalid value 'x' for
// $skip query option found. The $skip query option requires a
// non-negative integer value." (the message Graph gives for $top, see
// topOption).
func skipOption(q url.Values) (int, *queryError) {
	if _, ok := q["$skip"]; !ok {
		return 0, nil
	}
	v := q.Get("$skip")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &queryError{http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Invalid value '%s' for $skip query option found. The $skip query option requires a non-negative integer value.", v)}
	}
	return n, nil
}

// countOption reads $count from q: true or false, in any case (false
// when it is absent); another value
// answers 400 BadRequest "Invalid value 'x' for $count query option
// found. Valid values are 'true, false'." (the message of Microsoft.OData,
// the library Graph parses URIs with; the emulator's choice).
func countOption(q url.Values) (bool, *queryError) {
	if _, ok := q["$count"]; !ok {
		return false, nil
	}
	v := q.Get("$count")
	switch strings.ToLower(v) {
	case "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, &queryError{http.StatusBadRequest, "BadRequest",
		fmt.Sprintf("Invalid value '%s' for $count query option found. Valid values are 'true, false'.", v)}
}

func escapeSegs(segs []string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return strings.Join(esc, "/")
}

// selectAndExpandFailed is Graph's answer to a $select or $expand that
// names what the type does not have: 400 BadRequest "Parsing OData Select
// and Expand failed: Could not find a property named 'isRead' on type
// 'microsoft.graph.mailFolder'." (reported in
// https://github.com/mguessan/davmail/issues/451 and /488).
func selectAndExpandFailed(err *queryError) *queryError {
	if err.status != http.StatusBadRequest {
		return err
	}
	return &queryError{http.StatusBadRequest, "BadRequest", "Parsing OData Select and Expand failed: " + err.message}
}

// checkSelect checks that $select names properties (or relationships) of
// the type (see selectAndExpandFailed); "*" selects all.
func checkSelect(sc *scope, v string) *queryError {
	for _, name := range selectList(v) {
		if name == "*" {
			continue
		}
		if _, ok := sc.typ.prop(name, sc.beta); !ok {
			return selectAndExpandFailed(noProperty(name, sc.typ.name))
		}
	}
	return nil
}

// checkExpand checks $expand: each item names a relationship of the type
// (a property that is none answers 400, as Microsoft.OData words it; one
// that does not exist answers as selectAndExpandFailed). The emulator
// expands singleValueExtendedProperties of messages, with a nested
// $filter bound to singleValueLegacyExtendedProperty
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get);
// and the item of one itemAttachment,
// $expand=microsoft.graph.itemAttachment/item
// (https://learn.microsoft.com/graph/api/attachment-get, example 3); any
// other expansion, cast or nested option answers 501.
func checkExpand(sc *scope, v string, coll bool) *queryError {
	var later *queryError
	for _, item := range splitTopLevel(v, ',') {
		name, opts, hasOpts := strings.Cut(strings.TrimSpace(item), "(")
		name = strings.TrimSpace(name)
		if name == "*" {
			later = cmp.Or(later, notEmulated("$expand=*"))
			continue
		}
		if cast, rest, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(strings.ToLower(cast), "microsoft.graph.") {
			if sc.typ != schema.attachment || coll || hasOpts ||
				!strings.EqualFold(cast, "microsoft.graph.itemAttachment") || !strings.EqualFold(rest, "item") {
				later = cmp.Or(later, notEmulated(fmt.Sprintf("$expand=%s on %s", name, sc.typ.name)))
			}
			continue
		}
		p, ok := sc.typ.prop(name, sc.beta)
		if !ok {
			return selectAndExpandFailed(noProperty(name, sc.typ.name))
		}
		if !p.nav {
			return &queryError{http.StatusBadRequest, "BadRequest", fmt.Sprintf(
				"Parsing OData Select and Expand failed: Property '%s' on type '%s' is not a navigation property or complex property. Only navigation properties can be expanded.", name, sc.typ.name)}
		}
		if sc.typ != schema.message || p.typ != schema.extProp {
			later = cmp.Or(later, notEmulated(fmt.Sprintf("$expand=%s on %s", p.name, sc.typ.name)))
			continue
		}
		if !hasOpts {
			continue
		}
		opts = strings.TrimSuffix(strings.TrimSpace(opts), ")")
		for _, opt := range splitTopLevel(opts, ';') {
			k, val, _ := strings.Cut(opt, "=")
			if !strings.EqualFold(strings.TrimSpace(k), "$filter") {
				later = cmp.Or(later, notEmulated(fmt.Sprintf("%s inside $expand", strings.TrimSpace(k))))
				continue
			}
			if _, err := filterOf(&scope{typ: schema.extProp, beta: sc.beta}, val); err != nil {
				if err.status == http.StatusNotImplemented {
					later = cmp.Or(later, err)
					continue
				}
				return selectAndExpandFailed(err)
			}
		}
	}
	return later
}

// orderKey is one item of $orderby.
type orderKey struct {
	path string // canonical (see resolved.canon)
	desc bool
}

// parseOrderBy parses $orderby: property paths of the type, each with
// asc (the default) or desc (https://learn.microsoft.com/graph/query-parameters#orderby-parameter).
// A path the type does not have answers as in $filter (filter.go); one
// that is not a primitive value answers 400 with Microsoft.OData's
// message; one the emulator cannot sort on answers 501.
func parseOrderBy(sc *scope, v string) ([]orderKey, *queryError) {
	var keys []orderKey
	var later *queryError
	for _, item := range splitTopLevel(v, ',') {
		f := strings.Fields(item)
		if len(f) == 0 || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "asc") && !strings.EqualFold(f[1], "desc")) {
			return nil, &queryError{http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid orderby clause: '%s'.", strings.TrimSpace(item))}
		}
		r, err := sc.resolve(f[0])
		if err != nil {
			return nil, err.(*queryError)
		}
		if r.prop.coll || r.prop.typ != nil {
			return nil, &queryError{http.StatusBadRequest, codeParseURI, "The $orderby expression must evaluate to a single value of primitive type."}
		}
		if !sc.typ.emulated[r.canon] {
			later = cmp.Or(later, notEmulated(fmt.Sprintf("$orderby on '%s' of %s", f[0], sc.typ.name)))
		}
		keys = append(keys, orderKey{path: r.canon, desc: len(f) == 2 && strings.EqualFold(f[1], "desc")})
	}
	if later != nil {
		return nil, later
	}
	return keys, nil
}

// checkOrderByFilter applies the rule of "Using filter and orderby in the
// same query" on messages (https://learn.microsoft.com/graph/api/user-list-messages):
// the properties of $orderby must appear in $filter, in the same order,
// before any other; else 400 InefficientFilter "The restriction or sort
// order is too complex for this operation." (the status is reported in
// https://github.com/mpalermiti/outlook-mcp/issues/31).
func checkOrderByFilter(filterProps []string, keys []orderKey) *queryError {
	ok := len(keys) <= len(filterProps)
	for i := 0; ok && i < len(keys); i++ {
		ok = filterProps[i] == keys[i].path
	}
	if ok {
		return nil
	}
	return &queryError{http.StatusBadRequest, "InefficientFilter", "The restriction or sort order is too complex for this operation."}
}

// sortItems sorts rendered entities by keys, stably. Strings compare
// case-insensitively; null sorts before any value.
func sortItems(items []map[string]any, keys []orderKey) {
	slices.SortStableFunc(items, func(a, b map[string]any) int {
		for _, k := range keys {
			c := compareJSON(jsonPath(a, k.path), jsonPath(b, k.path))
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// jsonPath returns the value at a canonical path of a rendered entity,
// matching names case-insensitively; nil when there is none.
func jsonPath(m map[string]any, path string) any {
	var v any = m
	for _, seg := range strings.Split(path, "/") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = nil
		for k, x := range obj {
			if strings.EqualFold(k, seg) {
				v = x
				break
			}
		}
	}
	return v
}

func compareJSON(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if x, ok := jsonNumber(a); ok {
		if y, ok := jsonNumber(b); ok {
			return cmp.Compare(x, y)
		}
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(strings.ToLower(x), strings.ToLower(y))
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	}
	return 0
}

func jsonNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
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
	if len(sel) == 0 || slices.Contains(sel, "*") {
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
// answer); checkExpand has refused the others.
func expandQuery(c *call) (propExpansion, *reply) {
	e, err := expandProps(c.query.Get("$expand"), c.version == "beta")
	if err != nil {
		if qe, ok := err.(*queryError); ok {
			return nil, selectAndExpandFailed(qe).reply(c)
		}
		return nil, graphError(c, http.StatusBadRequest, "BadRequest", "Invalid expand clause: "+err.Error()).ref()
	}
	return e, nil
}

// expandProps parses $expand=singleValueExtendedProperties($filter=id eq '…')
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get)
// and returns the expansion of the properties, nil when they are not
// expanded.
func expandProps(expand string, beta bool) (propExpansion, error) {
	for _, item := range splitTopLevel(expand, ',') {
		item = strings.TrimSpace(item)
		name, opts, hasOpts := strings.Cut(item, "(")
		if !strings.EqualFold(strings.TrimSpace(name), "singleValueExtendedProperties") {
			continue // checkExpand answers the others
		}
		var pred predicate
		if hasOpts {
			opts = strings.TrimSuffix(strings.TrimSpace(opts), ")")
			for _, opt := range splitTopLevel(opts, ';') {
				k, v, _ := strings.Cut(opt, "=")
				if strings.EqualFold(strings.TrimSpace(k), "$filter") {
					p, err := parseFilter(v, &scope{typ: schema.extProp, beta: beta})
					if err != nil {
						return nil, err
					}
					pred = p.pred
				}
			}
		}
		return func(m *message) []extProp {
			out := []extProp{}
			for _, p := range m.shownProps() { // PidTagMessageFlags computed, see render.go
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

// edmType is an entity or complex type of Graph's schema, as far as
// query options see it: its properties and relationships, by lower-case
// name (Graph matches names case-insensitively), and the paths the
// emulator can filter and sort on.
type edmType struct {
	name  string // qualified, as Graph names it in errors
	props map[string]*edmProp
	// emulated are the canonical paths (see resolved.canon) that $filter
	// can test (fields.go binds them) and $orderby can sort on (they are
	// in the rendered JSON), collections included for lambdas.
	emulated map[string]bool
}

// edmProp is a property or relationship of an edmType.
type edmProp struct {
	name string   // as Graph spells it
	typ  *edmType // the complex or entity type of the value or its elements; nil for primitives
	coll bool     // a collection
	nav  bool     // a relationship, which $expand takes
	beta bool     // only under /beta
}

// prop returns the property name (case-insensitive) of t.
func (t *edmType) prop(name string, beta bool) (*edmProp, bool) {
	p, ok := t.props[strings.ToLower(name)]
	if !ok || (p.beta && !beta) {
		return nil, false
	}
	return p, true
}

func newType(name string, emulated ...string) *edmType {
	t := &edmType{name: "microsoft.graph." + name, props: map[string]*edmProp{}, emulated: map[string]bool{}}
	for _, e := range emulated {
		t.emulated[strings.ToLower(e)] = true
	}
	return t
}

// add adds properties; each name may end in "[]" (a collection), "!" (a
// relationship) or "+beta" (beta only), and is of type typ.
func (t *edmType) add(typ *edmType, names ...string) *edmType {
	for _, n := range names {
		p := &edmProp{typ: typ}
		for {
			switch {
			case strings.HasSuffix(n, "[]"):
				p.coll, n = true, strings.TrimSuffix(n, "[]")
				continue
			case strings.HasSuffix(n, "!"):
				p.nav, p.coll, n = true, true, strings.TrimSuffix(n, "!")
				continue
			case strings.HasSuffix(n, "+beta"):
				p.beta, n = true, strings.TrimSuffix(n, "+beta")
				continue
			}
			break
		}
		p.name = n
		t.props[strings.ToLower(n)] = p
	}
	return t
}

// schema holds the types of the mail API. Properties and relationships
// are those of the v1.0 metadata (as msgraph-sdk-go v1.89.0's models
// carry them; https://learn.microsoft.com/graph/api/resources/message#properties,
// https://learn.microsoft.com/graph/api/resources/mailfolder#properties,
// https://learn.microsoft.com/graph/api/resources/attachment#properties),
// plus the message's beta-only ones
// (https://learn.microsoft.com/graph/api/resources/message?view=graph-rest-beta).
var schema = func() (s struct{ message, mailFolder, attachment, extProp *edmType }) {
	emailAddress := newType("emailAddress").add(nil, "address", "name")
	recipient := newType("recipient").add(emailAddress, "emailAddress")
	itemBody := newType("itemBody").add(nil, "content", "contentType")
	dateTimeTimeZone := newType("dateTimeTimeZone").add(nil, "dateTime", "timeZone")
	followupFlag := newType("followupFlag").add(nil, "flagStatus").
		add(dateTimeTimeZone, "completedDateTime", "dueDateTime", "startDateTime")
	header := newType("internetMessageHeader").add(nil, "name", "value")
	s.extProp = newType("singleValueLegacyExtendedProperty", "id", "value").add(nil, "id", "value")
	multiProp := newType("multiValueLegacyExtendedProperty").add(nil, "id", "value[]")
	extension := newType("extension").add(nil, "id")
	mentionsPreview := newType("mentionsPreview").add(nil, "isMentioned")
	mention := newType("mention").add(nil, "id")
	messageRule := newType("messageRule").add(nil, "id")

	// fileAttachment's own properties are taken on the attachment
	// collection too (the emulator's choice: its attachments are all file
	// attachments, https://learn.microsoft.com/graph/api/resources/fileattachment).
	s.attachment = newType("attachment", "id", "name", "contentType", "size", "isInline", "lastModifiedDateTime").
		add(nil, "id", "contentType", "isInline", "lastModifiedDateTime", "name", "size",
			"contentBytes", "contentId", "contentLocation")

	s.message = newType("message",
		"id", "subject", "internetMessageId", "isRead", "isDraft", "importance", "inferenceClassification", "parentFolderId",
		"hasAttachments", "receivedDateTime", "sentDateTime", "createdDateTime", "lastModifiedDateTime",
		"flag/flagStatus", "categories", "singleValueExtendedProperties",
		"singleValueExtendedProperties/id", "singleValueExtendedProperties/value").
		add(nil, "id", "bodyPreview", "categories[]", "changeKey", "conversationId", "conversationIndex",
			"createdDateTime", "hasAttachments", "importance", "inferenceClassification", "internetMessageId",
			"isDeliveryReceiptRequested", "isDraft", "isRead", "isReadReceiptRequested", "lastModifiedDateTime",
			"parentFolderId", "receivedDateTime", "sentDateTime", "subject", "webLink",
			"unsubscribeData+beta", "unsubscribeEnabled+beta").
		add(itemBody, "body", "uniqueBody").
		add(followupFlag, "flag").
		add(recipient, "from", "sender", "bccRecipients[]", "ccRecipients[]", "replyTo[]", "toRecipients[]").
		add(header, "internetMessageHeaders[]").
		add(mentionsPreview, "mentionsPreview+beta").
		add(s.attachment, "attachments!").
		add(extension, "extensions!").
		add(multiProp, "multiValueExtendedProperties!").
		add(s.extProp, "singleValueExtendedProperties!").
		add(mention, "mentions!+beta")

	s.mailFolder = newType("mailFolder",
		"id", "displayName", "parentFolderId", "childFolderCount", "totalItemCount", "unreadItemCount", "isHidden").
		add(nil, "id", "childFolderCount", "displayName", "isHidden", "parentFolderId", "totalItemCount", "unreadItemCount")
	s.mailFolder.add(s.mailFolder, "childFolders!").
		add(messageRule, "messageRules!").
		add(s.message, "messages!").
		add(multiProp, "multiValueExtendedProperties!").
		add(s.extProp, "singleValueExtendedProperties!")
	return s
}()
