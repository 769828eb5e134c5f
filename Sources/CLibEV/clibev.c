// Intentionally empty: SwiftPM needs one C source for this target; the shims are inline.
#include "CLibEV.h"
