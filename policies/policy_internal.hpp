#pragma once
// Private to the policies library: how the loader fills a Policy before it is frozen behind
// std::shared_ptr<const Policy>.

#include <map>
#include <memory>
#include <string>

#include "policies/policy.hpp"

namespace custodian::policies {

using HierarchyMap = std::map<std::string, std::shared_ptr<const anon::Hierarchy>, std::less<>>;

struct PolicyBuilder {
    explicit PolicyBuilder(Policy& policy) : policy_(policy) {}
    PolicyModel& model() { return policy_.model_; }
    HierarchyMap& hierarchies() { return policy_.hierarchies_; }
    void setContent(std::string canonical);

private:
    Policy& policy_;
};

}  // namespace custodian::policies
