package exchangetest

import (
	"net/http"
	"slices"
	"strings"
)

// This file holds the mail folder handlers.

// listFolders lists the children of parent: GET /users/{id}/mailFolders
// lists the folders under msgfolderroot, hidden ones only with
// includeHiddenFolders=true (https://learn.microsoft.com/graph/api/user-list-mailfolders);
// GET .../childFolders lists a folder's children
// (https://learn.microsoft.com/graph/api/mailfolder-list-childfolders).
// $filter (e.g. displayName eq 'Name'), $top (default 10), $skip and
// $count are supported (https://learn.microsoft.com/graph/query-parameters).
func (s *Server) listFolders(c *call, mb *mailbox, parent string) reply {
	pred, r := filterQuery(c)
	if r != nil {
		return *r
	}
	hidden := strings.EqualFold(c.query.Get("includeHiddenFolders"), "true")
	var items []map[string]any
	for _, id := range mb.order {
		f := mb.folders[id]
		if f.parentID != parent || (f.hidden && !hidden) {
			continue
		}
		if pred != nil && !pred(folderFields(mb, f)) {
			continue
		}
		items = append(items, folderJSON(mb, f))
	}
	return s.page(c, items)
}

// createFolder creates a child of parent: POST /users/{id}/mailFolders
// (https://learn.microsoft.com/graph/api/user-post-mailfolders) and
// POST .../childFolders (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders),
// body {"displayName": …, "isHidden": …}, answering 201 with the folder.
// See checkFolderName for the names it refuses.
func (s *Server) createFolder(c *call, mb *mailbox, parent string) reply {
	var req struct {
		DisplayName *string `json:"displayName"`
		IsHidden    bool    `json:"isHidden"`
	}
	if r := readJSON(c, &req); r != nil {
		return *r
	}
	if r := checkFolderName(c, mb, parent, req.DisplayName); r != nil {
		return *r
	}
	f := s.addFolder(mb, "", *req.DisplayName, parent)
	f.hidden = req.IsHidden
	return s.entityReply(c, http.StatusCreated, folderJSON(mb, f))
}

// permanentDeleteFolder answers POST .../mailFolders/{id}/permanentDelete
// (https://learn.microsoft.com/graph/api/mailfolder-permanentdelete):
// the folder, its child folders and every message in them are removed,
// 204 No Content. A well-known folder (or msgfolderroot) answers 400
// ErrorDeleteDistinguishedFolder "Distinguished folders cannot be
// deleted.": the code is Exchange's
// (https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode),
// the status and message the emulator's own.
func (s *Server) permanentDeleteFolder(c *call, mb *mailbox, f *folder) reply {
	if f.wellKnown != "" {
		return graphError(c, http.StatusBadRequest, "ErrorDeleteDistinguishedFolder", "Distinguished folders cannot be deleted.")
	}
	gone := map[string]bool{f.id: true}
	for changed := true; changed; {
		changed = false
		for id, g := range mb.folders {
			if !gone[id] && gone[g.parentID] {
				gone[id], changed = true, true
			}
		}
	}
	for id := range gone {
		delete(mb.folders, id)
	}
	mb.order = slices.DeleteFunc(mb.order, func(id string) bool { return gone[id] })
	for id, m := range mb.messages {
		if gone[m.folderID] {
			delete(mb.messages, id)
		}
	}
	return noContent()
}
