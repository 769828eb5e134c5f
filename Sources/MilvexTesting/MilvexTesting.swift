// MilvexTesting: what an application's tests need to control time and servers around
// MilvexReactor (issue 23). A product of its own, so that production builds never link it:
// depend on it from test targets only.
