mod accounts;
mod annotations;
mod concurrency;
mod export;
mod items;
mod jobs;
mod projects;
mod versions;
