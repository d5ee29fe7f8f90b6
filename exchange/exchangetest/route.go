package exchangetest

import (
	"net/http"
	"net/url"
	"strings"
)

// This file routes a Graph path to its handler.

// splitPath splits an escaped URL path into its version and unescaped
// segments: "/v1.0/users/a%40b/mailFolders" -> "v1.0", [users a@b mailFolders].
func splitPath(escaped string) (string, []string, bool) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	if len(parts) < 1 {
		return "", nil, false
	}
	v := parts[0]
	if v != "v1.0" && v != "beta" {
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

// parseRoute understands
//
//	users/{u}/mailFolders[/{id}(/childFolders/{id})*[/childFolders|/messages[/{id}[/$value|/attachments…]]|/importMime|/permanentDelete]]
//	users/{u}/messages[/{id}[/$value|/attachments…]]
//
// where attachments… is attachments[/createUploadSession|/{id}[/$value]].
func parseRoute(segs []string) (route, bool) {
	if len(segs) < 3 || !seg(segs[0], "users") {
		return route{}, false
	}
	rt := route{user: segs[1], tmpl: "/users/{user}"}
	rest := segs[2:]
	switch {
	case seg(rest[0], "mailFolders"):
		rt.tmpl += "/mailFolders"
		if len(rest) == 1 {
			rt.kind = "folders"
			return rt, true
		}
		rt.folderID = rest[1]
		rt.tmpl += "/{id}"
		rest = rest[2:]
		for len(rest) > 0 && seg(rest[0], "childFolders") {
			if len(rest) == 1 {
				rt.kind = "children"
				rt.tmpl += "/childFolders"
				return rt, true
			}
			rt.folderID = rest[1]
			rt.tmpl += "/childFolders/{id}"
			rest = rest[2:]
		}
		if len(rest) == 0 {
			rt.kind = "folder"
			return rt, true
		}
		if seg(rest[0], "permanentDelete") || seg(rest[0], "microsoft.graph.permanentDelete") {
			if len(rest) != 1 {
				return route{}, false
			}
			rt.kind = "permanentDelete"
			rt.tmpl += "/permanentDelete"
			return rt, true
		}
		if seg(rest[0], "importMime") || seg(rest[0], "microsoft.graph.importMime") {
			if len(rest) != 1 {
				return route{}, false
			}
			rt.kind = "import"
			rt.tmpl += "/importMime"
			return rt, true
		}
		if !seg(rest[0], "messages") {
			return route{}, false
		}
	case seg(rest[0], "messages"):
	default:
		return route{}, false
	}
	// rest[0] is "messages".
	rt.tmpl += "/messages"
	switch len(rest) {
	case 1:
		rt.kind = "messages"
	case 2:
		rt.kind, rt.msgID = "message", rest[1]
		rt.tmpl += "/{id}"
	case 3:
		rt.msgID = rest[1]
		switch {
		case rest[2] == "$value":
			rt.kind = "value"
			rt.tmpl += "/{id}/$value"
		case seg(rest[2], "attachments"):
			rt.kind = "attachments"
			rt.tmpl += "/{id}/attachments"
		default:
			return route{}, false
		}
	case 4, 5:
		if !seg(rest[2], "attachments") {
			return route{}, false
		}
		rt.msgID = rest[1]
		rt.tmpl += "/{id}/attachments"
		switch {
		case len(rest) == 4 && (seg(rest[3], "createUploadSession") || seg(rest[3], "microsoft.graph.createUploadSession")):
			rt.kind = "uploadSession"
			rt.tmpl += "/createUploadSession"
		case len(rest) == 4:
			rt.kind, rt.attID = "attachment", rest[3]
			rt.tmpl += "/{id}"
		case rest[4] == "$value":
			rt.kind, rt.attID = "attachmentValue", rest[3]
			rt.tmpl += "/{id}/$value"
		default:
			return route{}, false
		}
	default:
		return route{}, false
	}
	return rt, true
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
			return jsonReply(http.StatusOK, folderJSON(mb, f))
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
				return deleteMessage(mb, m)
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
