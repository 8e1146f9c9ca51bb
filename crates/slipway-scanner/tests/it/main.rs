mod analyzer;
mod cvss;
mod feed;
mod matcher;
mod oracle;
mod report;
mod scan;
mod versions;
