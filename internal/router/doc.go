// Package router decides what the assistant answers: it matches triggers,
// builds the catch-up prompt of a chat since its cursor (escaped and capped),
// and delivers replies before it moves the cursor.
package router
