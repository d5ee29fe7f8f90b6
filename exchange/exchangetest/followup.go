package exchangetest

import (
	"net/http"
	"strings"
	"time"
)

// This file holds a message's follow-up flag, the followupFlag resource
// (https://learn.microsoft.com/graph/api/resources/followupflag):
// flagStatus, startDateTime, dueDateTime and completedDateTime, the dates
// as dateTimeTimeZone (https://learn.microsoft.com/graph/api/resources/datetimetimezone).

// dateTimeTZ is a dateTimeTimeZone: a wall-clock dateTime and the
// timeZone it is read in.
type dateTimeTZ struct {
	DateTime string `json:"dateTime"`
	TimeZone string `json:"timeZone"`
}

// followupDates are the dates of a message's flag; nil when unset.
type followupDates struct {
	start, due, completed *dateTimeTZ
}

// flagInput is a followupFlag in a request body; a date given as null is
// not given.
type flagInput struct {
	FlagStatus        *string     `json:"flagStatus"`
	StartDateTime     *dateTimeTZ `json:"startDateTime"`
	DueDateTime       *dateTimeTZ `json:"dueDateTime"`
	CompletedDateTime *dateTimeTZ `json:"completedDateTime"`
}

// Graph's answer to a flag whose dates do not fit its status: 400
// ErrorInvalidArgument "The request is invalid." (reported for a due date
// without a start date in
// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6473,
// again in https://github.com/littlebearapps/outlook-assistant/issues/81).
const (
	codeInvalidArgument = "ErrorInvalidArgument"
	msgInvalidArgument  = "The request is invalid."
)

// graphDateTime is how the emulator writes the dateTime of a
// dateTimeTimeZone: seven fractional digits and no offset, the form of
// Graph's answers (the form is the emulator's choice; no page specifies it).
const graphDateTime = "2006-01-02T15:04:05.0000000"

// applyFlag sets m's flag from in, at creation or in a PATCH
// (https://learn.microsoft.com/graph/api/message-update: "flag … The flag
// value that indicates the status, start date, due date, or completion
// date for the message"). Graph's rules are those of the flag it passes to
// Exchange, EWS's FlagType (MS-OXWSCORE 2.2.4.23,
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxwscore/b06add1d-e3eb-44fd-8436-b17bced1b086),
// which the followupFlag page repeats in part ("To set the due date, you
// must also specify the startDateTime; otherwise, you get a 400 Bad
// Request response"): flagged takes startDateTime and dueDateTime both or
// neither, and no completedDateTime; complete takes no startDateTime nor
// dueDateTime; notFlagged takes no date. Anything else, or a dateTime that
// is not a date and time, answers 400 ErrorInvalidArgument and changes
// nothing.
//
// The emulator's own rules, where no page says: a flag replaces the
// message's whole flag, as EWS sets Flag as one property (dates not given
// are dropped); a flag without flagStatus keeps the status and is checked
// against it; complete without completedDateTime completes now, in UTC
// and to the minute, as PidTagFlagCompleteTime is kept (MS-OXOFLAG 2.2.1.3,
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxoflag/1c694434-55c8-4aa9-b69e-23b0a4337b83); a
// date keeps the timeZone it was given in (UTC when none), converted to
// UTC only when its dateTime carries an offset ("Z", "+02:00").
func applyFlag(c *call, m *message, in *flagInput) *reply {
	status := m.flagStatus
	if in.FlagStatus != nil {
		v, r := checkEnum(c, *in.FlagStatus, flagStatuses)
		if r != nil {
			return r
		}
		status = v
	}
	invalid := graphError(c, http.StatusBadRequest, codeInvalidArgument, msgInvalidArgument).ref()
	var d followupDates
	for _, p := range []struct {
		in  *dateTimeTZ
		out **dateTimeTZ
	}{{in.StartDateTime, &d.start}, {in.DueDateTime, &d.due}, {in.CompletedDateTime, &d.completed}} {
		if p.in == nil {
			continue
		}
		v, ok := parseDateTimeTZ(*p.in)
		if !ok {
			return invalid
		}
		*p.out = &v
	}
	switch status {
	case "flagged":
		if d.completed != nil || (d.start == nil) != (d.due == nil) {
			return invalid
		}
	case "complete":
		if d.start != nil || d.due != nil {
			return invalid
		}
		if d.completed == nil {
			d.completed = &dateTimeTZ{now().Truncate(time.Minute).Format(graphDateTime), "UTC"}
		}
	default: // notFlagged
		if d != (followupDates{}) {
			return invalid
		}
	}
	m.flagStatus, m.flagDates = status, d
	return nil
}

// parseDateTimeTZ reads a dateTimeTimeZone and writes it as Graph does.
func parseDateTimeTZ(v dateTimeTZ) (dateTimeTZ, bool) {
	s := strings.TrimSpace(v.DateTime)
	tz := strings.TrimSpace(v.TimeZone)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return dateTimeTZ{t.UTC().Format(graphDateTime), "UTC"}, true
	}
	t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		return dateTimeTZ{}, false
	}
	if tz == "" {
		tz = "UTC"
	}
	return dateTimeTZ{t.Format(graphDateTime), tz}, true
}

// flagJSON renders m's followupFlag: flagStatus, and the dates it has.
func (m *message) flagJSON() map[string]any {
	out := map[string]any{"flagStatus": m.flagStatus}
	for name, d := range map[string]*dateTimeTZ{
		"startDateTime": m.flagDates.start, "dueDateTime": m.flagDates.due, "completedDateTime": m.flagDates.completed,
	} {
		if d != nil {
			out[name] = map[string]any{"dateTime": d.DateTime, "timeZone": d.TimeZone}
		}
	}
	return out
}
