#pragma once
// The built-in transforms, one file each under anonymizer/transforms/; registerBuiltinTransforms()
// adds them all.

#include "anonymizer/transform.hpp"

namespace custodian::anon::transforms {

TransformSpec dropSpec();
TransformSpec keepSpec();
TransformSpec maskSpec();
TransformSpec pseudonymizeSpec();
TransformSpec generalizeSpec();
TransformSpec topBottomCodingSpec();
TransformSpec roundSpec();
TransformSpec laplaceNoiseSpec();
TransformSpec dateShiftSpec();
TransformSpec setNullSpec();
TransformSpec constantSpec();

}  // namespace custodian::anon::transforms
