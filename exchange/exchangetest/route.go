package exchangetest

import (
	"net/http"
	"net/url"
	"strings"
)

// This file routes a Graph path to its handler.

// splitPath splits an escaped URL path into its version and unescaped
// segments: "/v1.0/users/a%40b/mailFolders" -> "v1.0", [users a@b mailFolders].
// Graph serves two versions, v1.0 and beta
// (https://learn.microsoft.com/graph/versioning-and-support); a path under
// neither does not split (serveWire answers it "Invalid version.").
func splitPath(escaped string) (string, []string, bool) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	if len(parts) < 1 {
		return "", nil, false
	}
	v := parts[0]
	if v != versionV1 && v != versionBeta {
		return "", nil, false
	}
	var segs []string
	for _, p := range parts[1:] {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", nil, false
		}
		segs = append(segs, u)
	}
	return v, segs, true
}

// msgSegmentNotFound is Graph's message (code BadRequest, status 400) for a
// path segment it cannot resolve under the request's version
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/4900).
const msgSegmentNotFound = "Resource not found for the segment '%s'."

// The two API versions of Graph.
const (
	versionV1   = "v1.0"
	versionBeta = "beta"
)

// Every route is documented under v1.0 and beta alike, except importMime:
//
//   - mailFolders list, create, get, childFolders
//     (https://learn.microsoft.com/graph/api/user-list-mailfolders,
//     https://learn.microsoft.com/graph/api/mailfolder-post-childfolders),
//     messages list, create, get, update, delete and $value
//     (https://learn.microsoft.com/graph/api/user-post-messages,
//     https://learn.microsoft.com/graph/api/message-get), attachments
//     (https://learn.microsoft.com/graph/api/message-post-attachments,
//     https://learn.microsoft.com/graph/api/attachment-get) and
//     singleValueExtendedProperties in $expand and $filter
//     (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get)
//     are v1.0 resources.
//   - POST …/mailFolders/{id}/permanentDelete is v1.0: the v1.0 reference
//     gives that very path
//     (https://learn.microsoft.com/graph/api/mailsearchfolder-permanentdelete?view=graph-rest-1.0)
//     and the v1.0 PowerShell module has Remove-MgUserMailFolderPermanent
//     (https://learn.microsoft.com/powershell/module/microsoft.graph.mail/remove-mgusermailfolderpermanent).
//   - POST …/attachments/createUploadSession is v1.0
//     (https://learn.microsoft.com/graph/api/attachment-createuploadsession?view=graph-rest-1.0).
//   - POST …/mailFolders/{id}/importMime is documented under beta only
//     (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta;
//     the page has no v1.0 version). Under v1.0 its segment is unknown,
//     and Graph answers a beta-only segment under v1.0 with 400 BadRequest
//     "Resource not found for the segment '…'." (reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/4900,
//     https://github.com/microsoftgraph/msgraph-beta-sdk-python/issues/764,
//     https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/1779).
//
// actionVersionOK reports whether the bound action name (without its
// "microsoft.graph." namespace) is served under version.
func actionVersionOK(version, name string) bool {
	if strings.EqualFold(name, "importMime") {
		return version == versionBeta
	}
	return true
}

// route is a parsed Graph path under /users/{user}/.
type route struct {
	user     string
	kind     string // folders, folder, children, permanentDelete, messages, message, value, import, attachments, attachment, attachmentValue, uploadSession
	folderID string // "" for /users/{user}/messages
	msgID    string
	attID    string
	tmpl     string
}

func seg(s, want string) bool { return strings.EqualFold(s, want) }

// action reports whether s names the bound action want, with or without
// its namespace ("importMime" or "microsoft.graph.importMime"); names are
// not case-sensitive (https://learn.microsoft.com/graph/traverse-the-graph).
func action(s, want string) bool {
	return seg(s, want) || seg(s, "microsoft.graph."+want)
}

// parseRoute understands, under version,
//
//	users/{u}/mailFolders[/{id}(/childFolders/{id})*[/childFolders|/messages[/{id}[/$value|/attachments…]]|/importMime|/permanentDelete]]
//	users/{u}/messages[/{id}[/$value|/attachments…]]
//
// where attachments… is attachments[/createUploadSession|/{id}[/$value]],
// and importMime is beta only (see actionVersionOK). A path it does not
// understand returns ok false and the first segment it could not resolve,
// which Graph names in its answer "Resource not found for the segment '…'."
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/4900; a
// version inside a $batch url is such a segment:
// https://github.com/microsoftgraph/msgraph-sdk-javascript/issues/1178).
// Paths Graph has but the emulator does not emulate (/users, /users/{u},
// /me, …) are unknown segments too.
func parseRoute(version string, segs []string) (rt route, bad string, ok bool) {
	if len(segs) == 0 {
		return route{}, "", false
	}
	if !seg(segs[0], "users") {
		return route{}, segs[0], false
	}
	if len(segs) < 3 {
		return route{}, lastSeg(segs), false
	}
	rt = route{user: segs[1], tmpl: "/users/{user}"}
	rest := segs[2:]
	switch {
	case seg(rest[0], "mailFolders"):
		rt.tmpl += "/mailFolders"
		if len(rest) == 1 {
			rt.kind = "folders"
			return rt, "", true
		}
		rt.folderID = rest[1]
		rt.tmpl += "/{id}"
		rest = rest[2:]
		for len(rest) > 0 && seg(rest[0], "childFolders") {
			if len(rest) == 1 {
				rt.kind = "children"
				rt.tmpl += "/childFolders"
				return rt, "", true
			}
			rt.folderID = rest[1]
			rt.tmpl += "/childFolders/{id}"
			rest = rest[2:]
		}
		if len(rest) == 0 {
			rt.kind = "folder"
			return rt, "", true
		}
		for _, a := range []struct{ name, kind string }{{"permanentDelete", "permanentDelete"}, {"importMime", "import"}} {
			if !action(rest[0], a.name) {
				continue
			}
			if !actionVersionOK(version, a.name) {
				return route{}, rest[0], false
			}
			if len(rest) != 1 {
				return route{}, rest[1], false
			}
			rt.kind = a.kind
			rt.tmpl += "/" + a.name
			return rt, "", true
		}
		if !seg(rest[0], "messages") {
			return route{}, rest[0], false
		}
	case seg(rest[0], "messages"):
	default:
		return route{}, rest[0], false
	}
	// rest[0] is "messages".
	rt.tmpl += "/messages"
	if len(rest) == 1 {
		rt.kind = "messages"
		return rt, "", true
	}
	rt.msgID = rest[1]
	rt.tmpl += "/{id}"
	if len(rest) == 2 {
		rt.kind = "message"
		return rt, "", true
	}
	switch {
	case rest[2] == "$value":
		if len(rest) > 3 {
			return route{}, rest[3], false
		}
		rt.kind = "value"
		rt.tmpl += "/$value"
		return rt, "", true
	case !seg(rest[2], "attachments"):
		return route{}, rest[2], false
	}
	rt.tmpl += "/attachments"
	switch {
	case len(rest) == 3:
		rt.kind = "attachments"
	case action(rest[3], "createUploadSession"):
		if len(rest) > 4 {
			return route{}, rest[4], false
		}
		rt.kind = "uploadSession"
		rt.tmpl += "/createUploadSession"
	case len(rest) == 4:
		rt.kind, rt.attID = "attachment", rest[3]
		rt.tmpl += "/{id}"
	case rest[4] == "$value" && len(rest) == 5:
		rt.kind, rt.attID = "attachmentValue", rest[3]
		rt.tmpl += "/{id}/$value"
	case rest[4] != "$value":
		return route{}, rest[4], false
	default:
		return route{}, rest[5], false
	}
	return rt, "", true
}

func lastSeg(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return segs[len(segs)-1]
}

// serveRoute serves a routed request. s.mu is held.
func (s *Server) serveRoute(c *call, mb *mailbox, rt route) reply {
	if c.method != http.MethodGet && c.method != http.MethodHead {
		if rep := checkQuota(c, mb); rep != nil {
			return *rep
		}
	}
	switch rt.kind {
	case "folders", "children":
		parent := mb.wellKnown["msgfolderroot"]
		if rt.kind == "children" {
			f := mb.resolve(rt.folderID)
			if f == nil {
				return notFound(c)
			}
			parent = f.id
		}
		switch c.method {
		case http.MethodGet:
			return s.listFolders(c, mb, parent)
		case http.MethodPost:
			return s.createFolder(c, mb, parent)
		}
	case "folder":
		f := mb.resolve(rt.folderID)
		if f == nil {
			return notFound(c)
		}
		if c.method == http.MethodGet {
			// $select as on a message (https://learn.microsoft.com/graph/api/mailfolder-get,
			// "supports the OData Query Parameters").
			return s.entityReply(c, http.StatusOK, applySelect(folderJSON(mb, f), c.selected()))
		}
	case "permanentDelete":
		if c.method == http.MethodPost {
			f := mb.resolve(rt.folderID)
			if f == nil {
				return notFound(c)
			}
			return s.permanentDeleteFolder(c, mb, f)
		}
	case "import":
		if c.method == http.MethodPost {
			f := mb.resolve(rt.folderID)
			if f == nil {
				return notFound(c)
			}
			return s.importMIME(c, mb, f, false)
		}
	case "messages":
		var f *folder
		if rt.folderID != "" {
			if f = mb.resolve(rt.folderID); f == nil {
				return notFound(c)
			}
		}
		switch c.method {
		case http.MethodGet:
			return s.listMessages(c, mb, f)
		case http.MethodPost:
			if f == nil {
				// POST /users/{id}/messages saves the draft in Drafts
				// (https://learn.microsoft.com/graph/api/user-post-messages).
				f = mb.folders[mb.wellKnown["drafts"]]
			}
			return s.createMessage(c, mb, f)
		}
	case "message", "value", "attachments", "attachment", "attachmentValue", "uploadSession":
		m := mb.routedMessage(rt)
		if m == nil {
			return notFound(c)
		}
		switch rt.kind {
		case "message":
			switch c.method {
			case http.MethodGet:
				return s.getMessage(c, m)
			case http.MethodPatch:
				return s.patchMessage(c, m)
			case http.MethodDelete:
				return deleteMessage(c, mb, m)
			}
		case "value":
			if c.method == http.MethodGet {
				return messageValue(m)
			}
		default:
			if rep, ok := s.serveAttachments(c, mb, m, rt); ok {
				return rep
			}
		}
	}
	return methodNotAllowed(c)
}

// routedMessage returns the message a route names, nil when it does not
// exist or when the route names a folder that does not exist.
func (mb *mailbox) routedMessage(rt route) *message {
	if rt.folderID != "" && mb.resolve(rt.folderID) == nil {
		return nil
	}
	return mb.messages[rt.msgID]
}
