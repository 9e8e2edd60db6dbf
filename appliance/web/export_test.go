package web

// CheapPasswords lowers Argon2's cost for the tests, which hash many
// passwords under the race detector.
func CheapPasswords() {
	argonParams.memory, argonParams.time = 64, 1
}
