//! Exposure budgets (wellbeing): who is near or at their daily limit of high-severity
//! content, per category. The counting and the queue's rule are the store's
//! (`settings.queue.exposure`).

pub(crate) mod api;
pub(crate) mod pages;
