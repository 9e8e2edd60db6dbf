package fault

// notes say how each fault was produced and what the suite does not cover;
// they end RELIABILITY.md.
var notes = []string{}
