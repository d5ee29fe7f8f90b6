package exchangetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// folderJSON renders a mailFolder
// (https://learn.microsoft.com/graph/api/resources/mailfolder#json-representation).
func (s *Server) folderJSON(c *call, mb *mailbox, f *folder) map[string]any {
	total, unread := mb.itemCount(f.id)
	return map[string]any{
		"@odata.type":      "#microsoft.graph.mailFolder",
		"id":               f.id,
		"displayName":      f.displayName,
		"parentFolderId":   f.parentID,
		"childFolderCount": mb.childCount(f.id),
		"unreadItemCount":  unread,
		"totalItemCount":   total,
		"isHidden":         f.hidden,
	}
}

func folderFields(mb *mailbox, f *folder) fields {
	return func(path string) (any, bool) {
		switch strings.ToLower(path) {
		case "id":
			return f.id, true
		case "displayname":
			return f.displayName, true
		case "parentfolderid":
			return f.parentID, true
		case "childfoldercount":
			return float64(mb.childCount(f.id)), true
		case "totalitemcount":
			t, _ := mb.itemCount(f.id)
			return float64(t), true
		case "unreaditemcount":
			_, u := mb.itemCount(f.id)
			return float64(u), true
		case "ishidden":
			return f.hidden, true
		}
		return nil, false
	}
}

// listFolders lists the children of parent: GET /users/{id}/mailFolders
// lists the folders under msgfolderroot, hidden ones only with
// includeHiddenFolders=true (https://learn.microsoft.com/graph/api/user-list-mailfolders);
// GET .../childFolders lists a folder's children
// (https://learn.microsoft.com/graph/api/mailfolder-list-childfolders).
// $filter (e.g. displayName eq 'Name'), $top (default 10), $skip and
// $count are supported (https://learn.microsoft.com/graph/query-parameters).
func (s *Server) listFolders(c *call, mb *mailbox, parent string) reply {
	pred, err := parseFilter(c.query.Get("$filter"))
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+err.Error())
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
		items = append(items, s.folderJSON(c, mb, f))
	}
	return s.page(c, items)
}

// page applies $top/$skip/$select/$count to a collection and adds
// @odata.nextLink when more items remain
// (https://learn.microsoft.com/graph/paging).
func (s *Server) page(c *call, items []map[string]any) reply {
	top := 10
	if v := c.query.Get("$top"); v != "" {
		n, ok := atoi(v)
		if !ok || n < 0 {
			return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid $top value.")
		}
		top = min(n, 1000)
	}
	skip := 0
	if v := c.query.Get("$skip"); v != "" {
		n, ok := atoi(v)
		if !ok || n < 0 {
			return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid $skip value.")
		}
		skip = n
	}
	total := len(items)
	end := min(skip+top, total)
	var pageItems []map[string]any
	if skip < total {
		pageItems = items[skip:end]
	}
	sel := selectList(c.query.Get("$select"))
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

func escapeSegs(segs []string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return strings.Join(esc, "/")
}

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

// createFolder creates a child of parent: POST /users/{id}/mailFolders
// (https://learn.microsoft.com/graph/api/user-post-mailfolders) and
// POST .../childFolders (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders),
// body {"displayName": …, "isHidden": …}, answering 201 with the folder.
// A sibling with the same displayName (case-insensitive, as Exchange
// compares folder names) answers 409 ErrorFolderExists.
//
// Display names are otherwise taken as they come: no Microsoft page
// documents a length limit, reserved characters or trimming for a
// mailFolder's displayName (user-post-mailfolders and
// mailfolder-post-childfolders list displayName as a plain String), so the
// emulator enforces none. A missing or blank displayName answers 400
// ErrorInvalidRequest; that rule is the emulator's own, as no page says
// what Graph answers. Leads that were not adopted, because they document
// other protocols: Exchange ActiveSync's FolderCreate requires 1 to 256
// characters (MS-ASCMD DisplayName,
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-ascmd/ed219381-895c-488c-8492-58954a50ac1b),
// and MAPI forbids [ ] / \ & ~ ? * | < > " ; : + in contact address book
// folder names (PidTagContactAddressBookFolderName,
// https://learn.microsoft.com/office/client-developer/outlook/mapi/pidtagcontactaddressbookfoldername-canonical-property).
func (s *Server) createFolder(c *call, mb *mailbox, parent string) reply {
	var req struct {
		DisplayName *string `json:"displayName"`
		IsHidden    bool    `json:"isHidden"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil {
		return graphError(c, http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body: "+err.Error())
	}
	if req.DisplayName == nil || strings.TrimSpace(*req.DisplayName) == "" {
		return graphError(c, http.StatusBadRequest, "ErrorInvalidRequest", "The displayName property is required.")
	}
	for _, f := range mb.folders {
		if f.parentID == parent && strings.EqualFold(f.displayName, *req.DisplayName) {
			return graphError(c, http.StatusConflict, codeFolderExists, msgFolderExists)
		}
	}
	f := s.addFolder(mb, "", *req.DisplayName, parent)
	f.hidden = req.IsHidden
	return jsonReply(http.StatusCreated, s.folderJSON(c, mb, f))
}
