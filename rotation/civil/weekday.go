package civil

import (
	"fmt"
	"strings"
	"time"
)

// ParseWeekday reads a day of the week written as in settings: "Mon",
// "Tue", ... or the whole English name, in any case.
func ParseWeekday(s string) (time.Weekday, error) {
	l := strings.ToLower(s)
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if l == name || l == name[:3] {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q is not a weekday; use Mon, Tue, Wed, Thu, Fri, Sat or Sun", s)
}
