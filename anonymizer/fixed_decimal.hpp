#pragma once
// A number with a fixed count of decimals ("0.125" for (0.125, 3)), as reports, manifests and
// messages print measured figures.

#include <cstdio>
#include <string>

namespace custodian::anon {

inline std::string fixedDecimal(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

}  // namespace custodian::anon
