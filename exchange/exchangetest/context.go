package exchangetest

import (
	"net/http"
	"net/url"
	"strings"
)

// This file writes the @odata.context of the JSON answers: every entity
// and every collection Graph answers carries one, a URL into the service's
// $metadata that says where the answer comes from
// (https://learn.microsoft.com/graph/traverse-the-graph; OData 4.0
// minimal metadata,
// https://docs.oasis-open.org/odata/odata/v4.0/os/part1-protocol/odata-v4.0-os-part1-protocol.html#_Toc372793655).
// Microsoft's documented answers give their shapes:
//
//   - a collection: the path read, each key in parentheses:
//     "…/$metadata#users('{id}')/messages" (https://learn.microsoft.com/graph/api/user-list-messages),
//     "…#users('{id}')/mailFolders('{id}')/childFolders";
//   - an entity: the path of its collection and /$entity:
//     "…#users('{id}')/messages('{id}')/attachments/$entity"
//     (https://learn.microsoft.com/graph/api/attachment-get), also for
//     the entity a POST to a collection creates
//     ("…#users('{id}')/mailFolders/$entity",
//     https://learn.microsoft.com/graph/api/user-post-mailfolders);
//   - $select: the properties selected, after the collection:
//     "…#users('{id}')/messages(sender,subject)" (user-list-messages),
//     "…#users('{id}')/messages(internetMessageHeaders)/$entity"
//     (https://learn.microsoft.com/graph/api/message-get, example 2);
//     $expand changes nothing (singlevaluelegacyextendedproperty-get,
//     attachment-get example 3);
//   - keys as OData string literals, percent-encoded:
//     users('john.doe%40contoso.onmicrosoft.com') (traverse-the-graph),
//     messages('AAMkAGUzY5QKjAAA%3D') (attachment-get);
//   - the item of an itemAttachment, expanded, has its own
//     "item@odata.context": "…#users('{id}')/messages('{id}')/attachments('{id}')/microsoft.graph.itemAttachment/item/$entity"
//     (attachment-get, example 3).
//
// The emulator's own rules:
//
//   - The service root is the emulator's own URL and the request's
//     version ("http://127.0.0.1:port/v1.0/$metadata#…"), as Graph's is
//     its own ("https://graph.microsoft.com/v1.0/$metadata#…"), the
//     root @odata.nextLink uses too (see baseURL).
//   - The user and the keys are spelled as the request spelled them (a
//     UPN stays a UPN, a well-known folder name stays the name), and the
//     segments as Graph's metadata spells them (mailFolders, childFolders,
//     messages, attachments, whatever their case in the request).
//   - $select is reflected on GET only, with the properties spelled as
//     the schema spells them, in the order of the request.
//   - importMime, an action that returns a message, answers
//     "…/$metadata#message", as Microsoft documents the answer of the
//     message actions move and copy
//     (https://learn.microsoft.com/graph/api/message-move); its own page
//     shows none.

// contextURL returns the @odata.context of the answer to c, an entity or
// a collection read, created or changed at c's path (see above).
func (s *Server) contextURL(c *call) string {
	root := s.baseURL(c) + "/$metadata#"
	segs := c.segs
	if len(segs) == 0 {
		return root
	}
	if action(lastSeg(segs), "importMime") {
		return root + "message"
	}
	entity := len(segs)%2 == 0 // the path ends with a key
	coll := segs
	if entity {
		coll = segs[:len(segs)-1]
	}
	out := root + contextPath(coll)
	if c.method == http.MethodGet {
		if sel := contextSelect(lastSeg(coll), c.version == versionBeta, c.selected()); sel != "" {
			out += "(" + sel + ")"
		}
	}
	if entity || c.method == http.MethodPost {
		out += "/$entity"
	}
	return out
}

// itemContextURL returns the item@odata.context of the item of the
// itemAttachment at c's path (attachment-get, example 3).
func (s *Server) itemContextURL(c *call) string {
	return s.baseURL(c) + "/$metadata#" + contextPath(c.segs) + "/microsoft.graph.itemAttachment/item/$entity"
}

// contextPath writes a path of alternating segments and keys
// (users, {user}, mailFolders, {id}, messages) as a context URL does:
// users('alice%40contoso.com')/mailFolders('inbox')/messages.
func contextPath(segs []string) string {
	var b strings.Builder
	for i := 0; i < len(segs); i += 2 {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(canonicalSegment(segs[i]))
		if i+1 < len(segs) {
			b.WriteString("('" + contextKey(segs[i+1]) + "')")
		}
	}
	return b.String()
}

// graphSegments are the segments of the emulated paths, as Graph's
// metadata spells them.
var graphSegments = []string{"users", "mailFolders", "childFolders", "messages", "attachments"}

func canonicalSegment(s string) string {
	for _, g := range graphSegments {
		if strings.EqualFold(s, g) {
			return g
		}
	}
	return s
}

// contextKey writes a key as an OData string literal (a quote doubled),
// percent-encoded as Graph encodes it: everything but letters, digits
// and - . _ ~ ("%40" for @, "%3D" for =, "%20" for a space).
func contextKey(k string) string {
	k = strings.ReplaceAll(k, "'", "''")
	return strings.ReplaceAll(url.QueryEscape(k), "+", "%20")
}

// contextSelect returns the $select list of a context URL: the
// properties sel names, spelled as the type of the collection coll
// spells them ("*" as it is), joined by commas; "" without $select.
func contextSelect(coll string, beta bool, sel []string) string {
	if len(sel) == 0 {
		return ""
	}
	typ := collectionType([]string{coll})
	names := make([]string, 0, len(sel))
	for _, name := range sel {
		if typ != nil {
			if p, ok := typ.prop(name, beta); ok {
				name = p.name
			}
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

// entityReply answers an entity (or a collection) as JSON, with its
// @odata.context.
func (s *Server) entityReply(c *call, status int, out map[string]any) reply {
	out["@odata.context"] = s.contextURL(c)
	return jsonReply(status, out)
}
