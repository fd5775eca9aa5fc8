"""The payment consumer: payments into their order's row, or parked until the order arrives."""
