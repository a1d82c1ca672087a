// What the store's tests share: each test on a fresh database, migrated, with a store on it.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "jobs/store.hpp"
#include "support/database.hpp"
#include "support/env.hpp"

namespace flare::jobs {

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<Store>(db_.url());
    store_->migrate(test::partitions());
  }

  test::TestDatabase db_;
  std::unique_ptr<Store> store_;
};

}  // namespace flare::jobs
