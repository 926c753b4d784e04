DROP TABLE price_documents;
