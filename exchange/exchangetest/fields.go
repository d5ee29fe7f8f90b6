package exchangetest

import "strings"

// This file binds the entities to $filter (see filter.go): the property
// paths a filter can name on each of them, matched case-insensitively.

// folderFields are the properties of a mailFolder
// (https://learn.microsoft.com/graph/api/resources/mailfolder#properties).
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

// messageFields are the properties of a message
// (https://learn.microsoft.com/graph/api/resources/message#properties).
func messageFields(m *message) fields {
	return func(path string) (any, bool) {
		switch strings.ToLower(path) {
		case "id":
			return m.id, true
		case "subject":
			return m.subject, true
		case "internetmessageid":
			return m.internetMessageID, true
		case "isread":
			return m.isRead, true
		case "isdraft":
			return m.isDraft, true
		case "importance":
			return m.importance, true
		case "inferenceclassification":
			return m.inference, true
		case "parentfolderid":
			return m.folderID, true
		case "hasattachments":
			return m.hasAttachment(), true
		case "receiveddatetime":
			return m.received, true
		case "sentdatetime":
			return m.sent, true
		case "createddatetime":
			return m.created, true
		case "lastmodifieddatetime":
			return m.mod, true
		case "flag/flagstatus":
			return m.flagStatus, true
		case "categories":
			var els []fields
			for _, cat := range m.categories {
				els = append(els, func(string) (any, bool) { return cat, true })
			}
			return els, true
		case "singlevalueextendedproperties":
			var els []fields
			for _, p := range m.shownProps() { // PidTagMessageFlags computed, see render.go
				els = append(els, propFields(p))
			}
			return els, true
		}
		return nil, false
	}
}

// propFields are the properties of a singleValueExtendedProperty: id
// (a propID, which compares by normalizePropID) and value
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
func propFields(p extProp) fields {
	return func(path string) (any, bool) {
		switch strings.ToLower(path) {
		case "id":
			return propID(p.id), true
		case "value":
			return p.value, true
		}
		return nil, false
	}
}
